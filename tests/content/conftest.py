"""Fixtures for the content store: a real js-ipfs daemon per session, temp stores."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
for folder in (REPO_ROOT, Path(__file__).resolve().parent):  # no editable install or tests package needed
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from ledger_node.content.daemon import IpfsDaemon  # noqa: E402
from ledger_node.content.embedded import EmbeddedStore  # noqa: E402
from ledger_node.content.ipfs_rpc import RpcStore  # noqa: E402

from content_helpers import SIZES, payload  # noqa: E402


def _group_members(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if not line.split()[1].startswith("Z")]  # zombies are dead


@pytest.fixture(scope="session")
def ipfs_daemon(tmp_path_factory):
    """A real js-ipfs daemon on 127.0.0.1; stopped at the end, leaving no process."""
    daemon = IpfsDaemon(tmp_path_factory.mktemp("jsipfs-repo"))
    daemon.start()
    pid = daemon.running_pid()
    yield daemon
    daemon.stop()
    assert daemon.running_pid() is None
    assert _group_members(pid) == [], "js-ipfs daemon left processes behind"


@pytest.fixture(scope="session")
def rpc_store(ipfs_daemon) -> RpcStore:
    return RpcStore(ipfs_daemon.api(), probe_timeout=1.0)


@pytest.fixture
def store(tmp_path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "content")


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory) -> dict[int, Path]:
    """The CID-test sizes written once to disk, shared by every implementation."""
    folder = tmp_path_factory.mktemp("samples")
    files = {}
    for size in SIZES:
        path = folder / f"{size}.bin"
        path.write_bytes(payload(size))
        files[size] = path
    return files


@pytest.fixture(scope="session")
def node_bin() -> str:
    return os.environ.get("NODE", "node")
