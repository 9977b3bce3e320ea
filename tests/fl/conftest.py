"""Fixtures of the FL tests: wallets, an in-thread coordinator, a coordinator process."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from eth_account import Account

from fl_coordinator.ledger import InMemoryLedger
from fl_coordinator.server import create_app
from fl_coordinator.service import TaskService
from ledger_node.config import Settings
from ledger_node.content import open_store

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(home: Path) -> dict:
    env = {**os.environ, "GRIDMART_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("GRIDMART_IPFS_API", None)
    return env


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def cli_env(tmp_path) -> dict:
    """Environment for CLI child processes: repo on PYTHONPATH, a private GRIDMART_HOME."""
    return child_env(tmp_path / "client-home")


@pytest.fixture
def wallets():
    return [Account.create() for _ in range(6)]


class Clock:
    """A settable clock so deadline rules are tested without sleeping."""

    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def service(tmp_path):
    clock = Clock(time.time())
    return TaskService(open_store(Settings(home=tmp_path / "coord")), InMemoryLedger(),
                       tmp_path / "spool", clock=clock)


@pytest.fixture
def live_service(tmp_path):
    """(base_url, service): the real app on uvicorn in a thread, on a free 127.0.0.1 port."""
    svc = TaskService(open_store(Settings(home=tmp_path / "coord")), InMemoryLedger(), tmp_path / "spool")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < end, "coordinator did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", svc
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def coordinator_process(tmp_path):
    """The coordinator as its own process: (base_url, home). Killed at teardown."""
    home = tmp_path / "coordinator-home"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fl_coordinator.server", "--host", "127.0.0.1",
                             "--port", str(port), "--home", str(home), "--he-workers", "1"],
                            cwd=ROOT, env=child_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(url + "/fl/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, "coordinator process did not come up"
            time.sleep(0.2)
        yield url, home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
