"""`gridmart up`, the main job, as a user runs it: its own devnet, a compute node beside the
API, a bundle application run as a job; Ctrl-C (SIGTERM) stops all three."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from ledger_node.config import REPO_ROOT
from ledger_node.devnet import free_port
from marketplace.client import MarketClient
from tests.compute.conftest import make_bundle
from tests.market.conftest import PASSWORD, SECRETS, gridmart_up, node_processes

@pytest.fixture
def up(tmp_path):
    with gridmart_up(tmp_path) as running:
        yield running


def test_gridmart_up_serves_jobs_on_its_own_compute_node_and_stops_everything(up, tmp_path):
    url, home, proc, log, env = up
    printed = log.read_text()
    assert "compute node ready at http://127.0.0.1:" in printed, printed
    nodes = node_processes(home / "compute")
    assert len(nodes) == 1
    node_env = dict(v.split(b"=", 1) for v in Path(f"/proc/{nodes[0]}/environ").read_bytes().split(b"\0") if b"=" in v)
    assert not set(SECRETS) & {k.decode() for k in node_env}, node_env.keys()  # no password, secret or key there
    assert not [v for v in SECRETS.values() if v.encode() in b"".join(node_env.values())]
    assert {b"GRIDMART_COMPUTE_TOKEN", b"GRIDMART_HOME"} <= node_env.keys()

    second = subprocess.run([sys.executable, "-m", "marketplace.cli.main", "up", "--port", str(free_port())],
                            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and f"is in use by gridmart up (pid {proc.pid}, {url})" in second.stderr, second.stderr
    assert httpx.get(f"{url}/health").status_code == 200 and len(node_processes(home / "compute")) == 1

    operator = Account.from_key(Account.decrypt(json.loads((home / "keystores" / "operator.json").read_text()),
                                                PASSWORD))
    as_operator = MarketClient(url, operator)
    as_operator.login()
    publisher, subscriber = Account.create(), Account.create()
    as_operator.admit(publisher.address, "Institute", b"id", ["publisher"])
    as_operator.admit(subscriber.address, "Province", b"id", ["subscriber"])
    as_pub, as_sub = MarketClient(url, publisher), MarketClient(url, subscriber)
    as_pub.login()
    as_sub.login()
    (tmp_path / "app.tar.gz").write_bytes(make_bundle(
        "open(os.environ['GRIDMART_OUTPUT'], 'w').write(open(os.environ['GRIDMART_INPUT']).read()[::-1])\n"))
    listing = as_pub.publish(tmp_path / "app.tar.gz", {"title": "Reverser", "kind": "application",
                                                        "sharing_mode": "remote-run"})
    as_operator.approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", 10, 1)
    licence = as_sub.buy(listing["product_id"], "per-use")["licence_id"]
    (tmp_path / "in.txt").write_text("abc")
    job = as_sub.start_job(as_sub.redeem(as_sub.sign_voucher(licence, "run")), tmp_path / "in.txt")
    deadline = time.monotonic() + 60
    while job["state"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = as_sub.job(job["id"])
    assert job["state"] == "done", job["error"]
    as_sub.job_result(job["id"], tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "cba"

    proc.send_signal(signal.SIGTERM)  # what Ctrl-C / make's stop does
    assert proc.wait(timeout=60) == 0
    assert node_processes(home / "compute") == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=2)


def _readme_first_session() -> str:
    """The shell block under the README's "A first session with the CLI"."""
    section = (REPO_ROOT / "README.md").read_text().split("## A first session with the CLI", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readmes_first_session_runs_as_written(up, tmp_path):
    """#18: the README's first session, line by line as a newcomer pastes it, on a fresh home
    beside `gridmart up`: wallets, admissions, a tagged encrypted listing, a purchase, the
    download checked and decrypted, the points left."""
    url, home, proc, log, env = up
    hint = log.read_text()
    assert f"source {Path(sys.executable).parent / 'activate'}" in hint, hint  # how to get `gridmart`
    assert f"GRIDMART_HOME={home}" in hint and f"GRIDMART_API_URL={url}" in hint, hint
    work = tmp_path / "session"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)  # the block starts at the project root
    session = {k: v for k, v in env.items() if k not in SECRETS and k != "VIRTUAL_ENV"}
    session.update(GRIDMART_API_URL=url, PATH="/usr/local/bin:/usr/bin:/bin")  # `gridmart` only once activated
    done = subprocess.run(["bash", "-e", "-x", "-c", _readme_first_session()], cwd=work, env=session,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]
    out = done.stdout
    assert re.search(r"^\s+1\s+data\s.*Load profiles\s+per-use 30pt  by Jiangsu$", out, re.M), out  # found by its tag
    assert "paid 30 points" in out and "balance: 470" in out, out
    assert (work / "bought.csv").read_bytes() == (work / "profiles.csv").read_bytes()  # decrypted, verified
    assert "admitted Zhejiang" in out and "verified against" in out
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
