"""Start and stop a compute node subprocess (tests, `gridmart up`, bench), like devnet.Devnet."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ledger_node.errors import ConfigError


@dataclass
class ComputeNode:
    """A node on 127.0.0.1:`port` keeping its state in `home`, logging to `home`/node.log."""

    port: int
    home: Path
    token: str
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def log_path(self) -> Path:
        return self.home / "node.log"

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", headers=self.headers, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 30.0) -> "ComputeNode":
        """Start the node and wait until /health answers."""
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {**_inherited(os.environ), "GRIDMART_COMPUTE_HOME": str(self.home), "GRIDMART_COMPUTE_TOKEN": self.token,
               "GRIDMART_COMPUTE_PORT": str(self.port), "GRIDMART_COMPUTE_HOST": "127.0.0.1",
               "GRIDMART_COMPUTE_WORKERS": str(self.workers), **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ledger_node.compute.node"], env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(f"the compute node exited with code {self.proc.returncode}; see {self.log_path}")
            if self.healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise ConfigError(f"the compute node did not answer within {timeout:.0f}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the node (a crash, for restart tests); its runs die with it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


#: what a node inherits from the process that starts it, nothing else: `gridmart up` holds the
#: operator's wallet password, the API's session secret and perhaps provider keys in URLs, and
#: the node runs members' bundles
_INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "PYTHONPATH", "SSL_CERT_FILE",
              "SSL_CERT_DIR", "GRIDMART_HOME", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "NO_PROXY")
_INHERITED_PREFIXES = ("LC_", "PIP_", "GRIDMART_COMPUTE_")


def _inherited(environ: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items()
            if (k in _INHERITED or k.startswith(_INHERITED_PREFIXES)) and k != "GRIDMART_COMPUTE_TOKEN"}
