"""The js-ipfs daemon wrapper: own repo, 127.0.0.1, restart after a crash, nothing left behind."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

from ledger_node.content.daemon import IpfsDaemon
from ledger_node.content.ipfs_rpc import RpcStore


def _members(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if not line.split()[1].startswith("Z")]  # zombies are dead


def test_session_daemon_listens_on_loopback_and_logs(ipfs_daemon):
    assert ipfs_daemon.api().startswith("/ip4/127.0.0.1/tcp/")
    assert "Daemon is ready" in ipfs_daemon.log_path.read_text()
    assert ipfs_daemon.start() == ipfs_daemon.api()  # a second start reuses the running daemon


def test_restart_after_a_crash_and_clean_stop(tmp_path):
    daemon = IpfsDaemon(tmp_path / "repo")
    daemon.start()
    first = daemon.running_pid()
    cid = RpcStore(daemon.api()).put_bytes(b"survives a crash").cid
    os.killpg(first, signal.SIGKILL)  # leaves repo.lock and api behind, like a power cut
    deadline = time.monotonic() + 10
    while _members(first) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ChildProcessError):  # reap it if subprocess has not already
        os.waitpid(first, 0)
    try:
        daemon.start()
        second = daemon.running_pid()
        assert second != first
        assert RpcStore(daemon.api()).get_bytes(cid) == b"survives a crash"
    finally:
        daemon.stop()
    assert daemon.running_pid() is None
    assert _members(second) == [], open(f"/proc/{second}/status").read() if os.path.exists(f"/proc/{second}") else ""
    assert not (tmp_path / "repo" / "api").exists()
