"""Start and stop the local Hardhat devnet (`hardhat node --hostname 127.0.0.1`).

The node runs in its own process group with its log in ``<home>/devnet/node.log``; a pid
file lets `gridmart chain down` stop a node that `gridmart chain up` started earlier.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .config import REPO_ROOT, get_settings
from .errors import ChainUnavailable, ConfigError

HARDHAT_BIN = REPO_ROOT / "node_modules" / "hardhat" / "internal" / "cli" / "bootstrap.js"


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    """True when `url` answers eth_chainId."""
    try:
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout)
        return r.status_code == 200 and "result" in r.json()
    except (httpx.HTTPError, ValueError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Devnet:
    """A Hardhat node on 127.0.0.1:`port`, logging to `log_path`."""

    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "node.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "node.pid"

    @classmethod
    def default(cls) -> "Devnet":
        s = get_settings()
        return cls(port=s.devnet_port, workdir=s.home / "devnet")

    def start(self, timeout: float = 60.0) -> "Devnet":
        """Start the node and wait until it answers JSON-RPC. Idempotent."""
        if rpc_ready(self.url):
            if self.running_pid() is None:
                raise ConfigError(f"port {self.port} is already served by another process: stop it or set GRIDMART_DEVNET_PORT")
            return self
        if not HARDHAT_BIN.exists():
            raise ConfigError("npm package 'hardhat' is missing: run `npm ci` or `make up`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                ["node", str(HARDHAT_BIN), "node", "--hostname", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        tmp = self.pid_path.with_suffix(".tmp")
        tmp.write_text(str(proc.pid))
        os.replace(tmp, self.pid_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise ChainUnavailable(f"hardhat node exited with code {proc.returncode}; see {self.log_path}")
            if rpc_ready(self.url):
                return self
            time.sleep(0.2)
        self.stop()
        raise ChainUnavailable(f"hardhat node did not answer within {timeout:.0f}s; see {self.log_path}")

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the node this folder started; returns False if none was running."""
        pid = self.running_pid()
        self.pid_path.unlink(missing_ok=True)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return True
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
        return True
