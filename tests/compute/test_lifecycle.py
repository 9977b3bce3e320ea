"""A job's life on a real node: submit, progress, logs, result, idempotent refs, cancel, errors."""
from __future__ import annotations

import hashlib
import json
import os
import time

import httpx

from ledger_node.content.importer import compute_cid

from .conftest import make_bundle

HELLO = make_bundle("""
    print("hello from the bundle")
    print("progress: 50%", flush=True)
    print("progress: 1.0", flush=True)
    sys.stderr.write("a warning\\n")
    open(os.environ["GRIDMART_OUTPUT"], "w").write("result:" + open(os.environ["GRIDMART_INPUT"]).read())
""")


def test_a_job_runs_to_done_with_logs_progress_and_result(client):
    r = client.submit(HELLO, ref="hello-1", input=b"42")
    assert r.status_code == 201, r.text
    job = client.wait(r.json()["id"])
    assert job["state"] == "done", job["error"]
    assert job["progress"] == 1.0 and job["attempts"] == 1 and job["error"] is None
    assert job["started_at"] and job["finished_at"] and len(job["env_hash"]) == 64
    logs = client.logs(job["id"])
    assert "hello from the bundle" in logs and "a warning" in logs
    result = client.http.get(f"/jobs/{job['id']}/result")
    assert result.content == b"result:42"
    assert job["output"] == {"cid": compute_cid(b"result:42"), "sha256": hashlib.sha256(b"result:42").hexdigest(),
                             "size": 9, "media_type": "text/plain"}
    tail = client.http.get(f"/jobs/{job['id']}/logs", params={"offset": len(logs.encode()) - 10})
    assert tail.text == logs[-10:] and tail.headers["X-Next-Offset"] == str(len(logs.encode()))

    again = client.submit(HELLO, ref="hello-1", input=b"42")
    assert again.status_code == 200 and again.json() == {"id": job["id"], "state": "done"}


def test_cancel_kills_a_sleeping_job(client):
    archive = make_bundle("""
        import time
        open(os.path.join(os.environ["GRIDMART_SCRATCH"], "pid"), "w")
        print("sleeping", flush=True)
        time.sleep(300)
    """)
    job_id = client.submit(archive).json()["id"]
    deadline = time.monotonic() + 30
    while "sleeping" not in client.logs(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.job(job_id)["state"] == "running"
    assert _sleepers() , "the job's process should be running"
    r = client.http.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json() == {"id": job_id, "state": "cancelled"}
    deadline = time.monotonic() + 5
    while _sleepers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleepers(), "the cancelled job's process is still there"
    assert client.http.post(f"/jobs/{job_id}/cancel").status_code == 409
    assert client.http.get(f"/jobs/{job_id}/result").status_code == 409


def _sleepers() -> list[int]:
    """Processes running a bundle entry point (main.py under an environment's python)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"main.py" in cmd and any(part.endswith(b"/env/bin/python") for part in cmd):
            found.append(int(pid))
    return found


def test_requests_without_the_token_are_refused(node):
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": node.token}):
        r = httpx.get(f"{node.url}/health", headers=headers)
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    health = httpx.get(f"{node.url}/health", headers=node.headers).json()
    assert health["ok"] is True and health["workers"] == 1 and "uid 65534" in health["isolation"]


def test_bad_specs_are_refused_with_a_message(client):
    r = client.http.post("/jobs", data={"spec": "{not json"}, files={"bundle": ("b", HELLO)})
    assert r.status_code == 400 and "spec is not JSON" in r.json()["detail"]
    r = client.http.post("/jobs", data={"spec": json.dumps({"ref": "x", "bundle_sha256": "abc"})},
                         files={"bundle": ("b", HELLO)})
    assert r.status_code == 400 and "bundle_sha256" in r.json()["detail"]
    r = client.http.post("/jobs", data={"spec": json.dumps({"ref": "x"})})
    assert r.status_code == 400 and "bundle" in r.json()["detail"]
    r = client.submit(HELLO, bundle_sha256="0" * 64)
    assert r.status_code == 400 and "differs from spec.bundle_sha256" in r.json()["detail"]
    r = client.submit(HELLO, input=b"abc", input_sha256="1" * 64)
    assert r.status_code == 400 and "input's sha-256" in r.json()["detail"]
    r = client.submit(HELLO, dataset={"cid": "bafkreiexampleexample", "sha256": "2" * 64})
    assert r.status_code == 400 and "does not hold dataset" in r.json()["detail"]
    assert client.http.get("/jobs/" + "f" * 32).status_code == 404


def test_a_node_inherits_no_password_secret_or_key():
    from ledger_node.compute.process import _inherited

    environ = {"PATH": "/usr/bin", "GRIDMART_HOME": "/h", "GRIDMART_COMPUTE_WORKERS": "2", "PIP_INDEX_URL": "http://i",
               "GRIDMART_WALLET_PASSWORD": "pw", "GRIDMART_SESSION_SECRET": "s", "GRIDMART_RPC_URL": "https://k@rpc",
               "GRIDMART_DATABASE_URL": "postgresql://u:pw@db", "AWS_SECRET_ACCESS_KEY": "k",
               "GRIDMART_FL_KEY_FILE": "/k", "GRIDMART_COMPUTE_TOKEN": "the API's"}
    assert _inherited(environ) == {"PATH": "/usr/bin", "GRIDMART_HOME": "/h", "GRIDMART_COMPUTE_WORKERS": "2",
                                   "PIP_INDEX_URL": "http://i"}
