"""Start and stop a local js-ipfs daemon (npm ``ipfs@0.66.1``) for tests and dev.

No Kubo binary can be installed offline; js-ipfs serves the same RPC API.
The daemon gets its own repo folder, listens on 127.0.0.1 only, on ports the
kernel picks (so parallel runs never collide; the real API address is read
from the repo's ``api`` file), logs to ``<repo>/daemon.log``, and runs in its
own process group so stopping it leaves no node process behind.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from ledger_node.config import REPO_ROOT
from ledger_node.errors import ConfigError

from .errors import StoreUnavailable

JSIPFS = REPO_ROOT / "node_modules" / ".bin" / "jsipfs"


def _state(pid: int) -> str | None:
    """The process state letter from /proc (None if gone); a zombie ("Z") is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def api_url(multiaddr: str) -> str:
    """``/ip4/127.0.0.1/tcp/5001/http`` -> ``http://127.0.0.1:5001``."""
    parts = multiaddr.strip().split("/")
    return f"http://{parts[2]}:{parts[4]}"


class IpfsDaemon:
    """One js-ipfs daemon bound to one repo folder; usable as a context manager."""

    def __init__(self, repo: "str | os.PathLike[str]", *, api_port: int = 0, jsipfs: Path = JSIPFS):
        self.repo = Path(repo)
        self.api_port = api_port
        self.jsipfs = Path(jsipfs)
        self.log_path = self.repo / "daemon.log"
        self.pid_path = self.repo / "daemon.pid"
        self._env = {**os.environ, "IPFS_PATH": str(self.repo)}

    # -- lifecycle ---------------------------------------------------------
    def init(self) -> None:
        """Create the repo (test profile: no bootstrap peers, no MDNS) and bind it to 127.0.0.1."""
        if not self.jsipfs.exists():
            raise ConfigError(f"{self.jsipfs} is missing; run `npm install` in {REPO_ROOT}")
        if not (self.repo / "config").exists():
            self.repo.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(
                [str(self.jsipfs), "init", "--profile", "test", "--emptyRepo"],
                env=self._env, capture_output=True, text=True, timeout=120,
            )
            if proc.returncode != 0:
                raise ConfigError(f"jsipfs init failed in {self.repo}: {proc.stderr.strip()[-300:]}")
        config_path = self.repo / "config"
        config = json.loads(config_path.read_text())
        config["Addresses"].update(
            API=f"/ip4/127.0.0.1/tcp/{self.api_port}",
            Gateway="/ip4/127.0.0.1/tcp/0",
            RPC="/ip4/127.0.0.1/tcp/0",
            Swarm=["/ip4/127.0.0.1/tcp/0"],
        )
        config_path.write_text(json.dumps(config, indent=2))

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self, timeout: float = 90.0) -> str:
        """Start (or reuse) the daemon; returns its API multiaddr once it answers."""
        if self.running_pid():
            return self.api()
        self.init()
        for stale in ("api", "repo.lock"):  # left behind by a daemon that was killed
            path = self.repo / stale
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(self.jsipfs), "daemon"],
                env=self._env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_path.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise StoreUnavailable(f"js-ipfs daemon exited with code {proc.returncode}; see {self.log_path}")
            if self._ready():
                return self.api()
            time.sleep(0.2)
        self.stop()
        raise StoreUnavailable(f"js-ipfs daemon not ready after {timeout:g} s; see {self.log_path}")

    def api(self) -> str:
        """The API multiaddr the running daemon wrote (``/ip4/127.0.0.1/tcp/N/http``)."""
        try:
            return (self.repo / "api").read_text().strip()
        except FileNotFoundError:
            raise StoreUnavailable(f"no js-ipfs daemon is running for {self.repo}; start it first") from None

    def _ready(self) -> bool:
        try:
            url = api_url(self.api())
            return httpx.post(f"{url}/api/v0/version", timeout=2).status_code == 200
        except (StoreUnavailable, httpx.HTTPError, IndexError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the daemon's whole process group, SIGKILL it if it lingers."""
        pid = self.running_pid()
        if pid is not None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 30.0)):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and _group_alive(pid):
                    _reap(pid)
                    time.sleep(0.1)
                if not _group_alive(pid):
                    break
            _reap(pid)
        self.pid_path.unlink(missing_ok=True)
        (self.repo / "api").unlink(missing_ok=True)

    def __enter__(self) -> "IpfsDaemon":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _reap(pid: int) -> None:
    """Collect the exit status if the daemon is our child (else it stays a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # a zombie leader still counts as a group member: look for live members
    return any(_alive(pid) for pid in _group(pgid))


def _group(pgid: int) -> list[int]:
    members = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
                members.append(int(proc.name))
    return members

