"""A node killed with -9 mid-job: on restart its job runs again (once), queued jobs survive."""
from __future__ import annotations

import time
from pathlib import Path

from .conftest import Client, make_bundle, start_node

# sleeps as long as its input says
SLOW = make_bundle("""
    import time
    print("entry began", flush=True)
    time.sleep(float(open(os.environ["GRIDMART_INPUT"]).read()))
    open(os.environ["GRIDMART_OUTPUT"], "w").write("finished")
""")


def _wait_log(client: Client, job_id: str, text: str, count: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.logs(job_id).count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} never appeared in the log"
        time.sleep(0.1)


def test_a_job_interrupted_once_is_requeued_and_completes(tmp_path):
    node = start_node(tmp_path / "node")
    try:
        client = Client(node)
        running = client.submit(SLOW, input=b"3").json()["id"]
        queued = client.submit(SLOW, input=b"0").json()["id"]
        _wait_log(client, running, "entry began")
        left = [Path(p) for p in (node.home / "jobs" / running / "workdirs").read_text().split()]
        assert all(map(Path.exists, left))
        node.kill()
        node.start()
        client = Client(node)
        job = client.wait(running, timeout=60)
        assert job["state"] == "done" and job["attempts"] == 2, job
        assert "attempt 2" in client.logs(running) and client.logs(running).count("entry began") == 2
        assert client.wait(queued)["state"] == "done"
        assert client.job(queued)["attempts"] == 1
        assert not (node.home / "jobs" / running / "workdirs").exists()
        assert not any(map(Path.exists, left)), "the interrupted run's work folders were left behind"
    finally:
        node.stop()


def test_a_job_interrupted_twice_fails_with_the_documented_reason(tmp_path):
    node = start_node(tmp_path / "node")
    try:
        client = Client(node)
        job_id = client.submit(SLOW, input=b"120").json()["id"]
        for attempt in (1, 2):
            _wait_log(client, job_id, "entry began", count=attempt)
            node.kill()
            node.start()
            client = Client(node)
        job = client.job(job_id)
        assert job["state"] == "failed" and job["error"] == "the compute node restarted during this job twice"
        assert job["attempts"] == 2 and job["finished_at"]
        assert client.run(SLOW, input=b"0")["state"] == "done"  # the node runs the next job
    finally:
        node.stop()
