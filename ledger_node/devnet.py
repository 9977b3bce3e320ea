"""Start and stop the local devnet: anvil (keeps its state) or Hardhat (starts empty).

Two clients, both configured like hardhat.config.js: chain id 31337, the Hardhat
mnemonic's first 10 accounts with 10 000 ETH each, a zero base fee and gas price, the
Cancun hardfork, a 30 M block gas limit, the EIP-170 code size limit, automine, 127.0.0.1
only. The same transactions use the same gas on both (bench/devnet.py checks it).

- anvil (npm ``@foundry-rs/anvil-linux-amd64``, a prebuilt binary in node_modules) loads
  ``<workdir>/state.json`` at start when it exists, writes it every
  :data:`STATE_INTERVAL` seconds and once more when it exits on SIGTERM/SIGINT, so
  deployments, members, licences, blocks and logs survive `gridmart chain down`/`up` and a
  reboot; a crash (kill -9, power loss) loses at most the last interval. anvil rewrites
  the file in place (no temporary file and rename), so a crash *during* a dump can leave
  it cut short: :meth:`Devnet.start` checks it first and, if it does not parse, sets it
  aside (``state.corrupt-<time>.json``) and starts from ``state.good.json``, the copy it
  made at the previous start, saying so in the log.
  What it does not keep: the state *at* old blocks. Calls at a block (``eth_call`` /
  ``eth_getBalance`` with a block number) work for the last ~500 blocks of the running node
  only, and not at all for blocks before a restart ("BlockOutOfRangeError"); blocks,
  transactions, receipts and logs are all kept.
- hardhat (``hardhat node``) keeps no state: every start is a fresh chain (but, while it
  runs, the state at every block).

Which one: ``GRIDMART_DEVNET`` (``anvil`` | ``hardhat``) when set. Unset, the devnet of
`gridmart up` / `gridmart chain up` (:meth:`Devnet.default`) is anvil, and a
``Devnet(port=..., workdir=...)`` built by tests and benches is Hardhat: in automine mode
Hardhat refuses a transaction whose nonce is ahead of the account's ("Nonce too high"),
which makes :class:`~ledger_node.chain.TxSender` resync, while anvil queues it and it is
never mined. The test suite's ``evm_revert`` rolls nonces back under the session's
senders, so it relies on that refusal.

The node runs in its own process group with its log in ``<workdir>/node.log``; a pid
file lets `gridmart chain down` stop a node that `gridmart chain up` started earlier.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .config import REPO_ROOT, get_settings
from .errors import ChainUnavailable, ConfigError

HARDHAT_BIN = REPO_ROOT / "node_modules" / "hardhat" / "internal" / "cli" / "bootstrap.js"
ANVIL_BIN = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
CLIENTS = ("anvil", "hardhat")
#: the client of `gridmart up` / `gridmart chain up` when GRIDMART_DEVNET is unset
DEFAULT_CLIENT = "anvil"
#: the client of an explicit Devnet(port=..., workdir=...) (tests, benches) when it is unset
DEFAULT_EXPLICIT_CLIENT = "hardhat"

#: seconds between anvil's state dumps: what a crash can lose (a clean stop dumps on exit).
#: A dump rewrites the whole file (accounts, storage, every block and receipt: ~5.5 KiB a
#: block); bench/devnet.py measures ~50 ms for 834 blocks (4.5 MiB) on this machine, so
#: 5 s costs ~1 % of a core now and ~10 % for a 10 000-block chain, where 1-2 s would cost
#: 25-50 %; it also keeps the window in which a crash catches a half-written file small.
STATE_INTERVAL = 5

#: what hardhat.config.js sets (or leaves at Hardhat 2's defaults), spelled for anvil
HARDHAT_MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 31337
HARDFORK = "cancun"
BLOCK_GAS_LIMIT = 30_000_000  # Hardhat's default blockGasLimit
CODE_SIZE_LIMIT = 0x6000  # EIP-170, as Hardhat without allowUnlimitedContractSize
ACCOUNTS = 10
BALANCE_ETH = 10_000


def devnet_client(default: str = DEFAULT_CLIENT) -> str:
    """The devnet client named by GRIDMART_DEVNET (`default` when unset)."""
    value = os.environ.get("GRIDMART_DEVNET", "").strip().lower() or default
    if value not in CLIENTS:
        raise ConfigError(f"GRIDMART_DEVNET={value!r}: expected one of {', '.join(CLIENTS)}")
    return value


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    """True when `url` answers eth_chainId."""
    try:
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout)
        return r.status_code == 200 and "result" in r.json()
    except (httpx.HTTPError, ValueError):
        return False


def client_version(url: str, timeout: float = 1.0) -> str | None:
    """web3_clientVersion of `url` ("anvil/v1.7.1", "HardhatNetwork/2.26.3/..."), None if unreachable."""
    try:
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "web3_clientVersion", "params": []},
                       timeout=timeout)
        return r.json().get("result")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class Devnet:
    """A devnet node (`client`: anvil or hardhat) on 127.0.0.1:`port`, its files in `workdir`."""

    port: int
    workdir: Path
    client: str = field(default_factory=lambda: devnet_client(DEFAULT_EXPLICIT_CLIENT))

    def __post_init__(self) -> None:
        if self.client not in CLIENTS:
            raise ConfigError(f"unknown devnet client {self.client!r}: expected one of {', '.join(CLIENTS)}")
        self.workdir = Path(self.workdir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "node.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "node.pid"

    @property
    def state_path(self) -> Path | None:
        """anvil's state file (None for Hardhat, which keeps no state)."""
        return self.workdir / "state.json" if self.client == "anvil" else None

    @property
    def persistent(self) -> bool:
        return self.client == "anvil"

    @classmethod
    def default(cls) -> "Devnet":
        s = get_settings()
        return cls(port=s.devnet_port, workdir=s.home / "devnet", client=devnet_client(DEFAULT_CLIENT))

    def command(self) -> list[str]:
        """The command line that starts this node."""
        if self.client == "hardhat":
            return ["node", str(HARDHAT_BIN), "node", "--hostname", "127.0.0.1", "--port", str(self.port)]
        return [
            str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(self.port),
            "--chain-id", str(CHAIN_ID), "--hardfork", HARDFORK,
            "--mnemonic", HARDHAT_MNEMONIC, "--accounts", str(ACCOUNTS), "--balance", str(BALANCE_ETH),
            # gas is measured but free: a zero base fee stays zero (anvil treats it as fixed)
            "--base-fee", "0", "--gas-price", "0", "--disable-min-priority-fee",
            "--gas-limit", str(BLOCK_GAS_LIMIT), "--code-size-limit", str(CODE_SIZE_LIMIT),
            # Hardhat has no CREATE2 factory at 0x4e59...956c; keep the genesis state identical
            "--disable-default-create2-deployer",
            "--state", str(self.state_path), "--state-interval", str(STATE_INTERVAL),
            # anvil keeps the last ~500 blocks' states in memory and by default writes every older
            # one to ~/.foundry/anvil/tmp (~170 KiB a block, never removed): keep none on disk, and
            # point the cache into the workdir so nothing is ever written outside GRIDMART_HOME
            "--max-persisted-states", "0", "--cache-path", str(self.workdir / "anvil-cache"),
            "--color", "never",
        ]

    def _binary(self) -> Path:
        return ANVIL_BIN if self.client == "anvil" else HARDHAT_BIN

    def start(self, timeout: float = 60.0) -> "Devnet":
        """Start the node and wait until it answers JSON-RPC. Idempotent."""
        if rpc_ready(self.url):
            if self.running_pid() is None:
                raise ConfigError(f"port {self.port} is already served by another process: stop it or set GRIDMART_DEVNET_PORT")
            version = (client_version(self.url) or "").lower()
            running = next((c for c in CLIENTS if version.startswith(c)), version.split("/")[0])
            if version and running != self.client:
                raise ConfigError(f"the devnet in {self.workdir} runs {running}, not {self.client}: "
                                  "stop it with `gridmart chain down` first, or set GRIDMART_DEVNET to match")
            return self
        if _port_taken(self.port):
            raise ConfigError(f"port {self.port} is taken by another process (not a JSON-RPC node): "
                              "stop it or set GRIDMART_DEVNET_PORT")
        if not self._binary().exists():
            package = "@foundry-rs/anvil-linux-amd64" if self.client == "anvil" else "hardhat"
            raise ConfigError(f"npm package '{package}' is missing ({self._binary()}): run `make up` or `npm install`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.client == "anvil":
            self._check_state()
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                self.command(), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        tmp = self.pid_path.with_suffix(".tmp")
        tmp.write_text(str(proc.pid))
        os.replace(tmp, self.pid_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise ChainUnavailable(f"{self.client} node exited with code {proc.returncode}; see {self.log_path}")
            if rpc_ready(self.url):
                return self
            time.sleep(0.05)
        self.stop()
        raise ChainUnavailable(f"{self.client} node did not answer within {timeout:.0f}s; see {self.log_path}")

    @property
    def good_state_path(self) -> Path:
        return self.workdir / "state.good.json"

    def _check_state(self) -> None:
        """Keep a copy of a state file that parses; replace one that does not by that copy."""
        state, good = self.state_path, self.good_state_path
        if not state.exists():
            return
        try:
            with open(state, "rb") as f:
                json.load(f)
        except (ValueError, OSError) as exc:
            bad = state.with_name(f"state.corrupt-{time.strftime('%Y%m%dT%H%M%S')}.json")
            os.replace(state, bad)
            if good.exists():
                _atomic_copy(good, state)
                note = f"starting from {good.name}, the state of the previous start"
            else:
                note = "starting from an empty chain"
            with open(self.log_path, "a") as log:
                log.write(f"gridmart: {state.name} is damaged ({exc.__class__.__name__}: {exc}), probably by a crash "
                          f"during a dump; moved to {bad.name}, {note}\n")
            return
        _atomic_copy(state, good)

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the node this folder started; returns False if none was running.

        SIGTERM first, then wait: anvil writes its state file on the way out (a large state
        takes a moment), so SIGKILL comes only after `timeout` seconds."""
        pid = self.running_pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid_path.unlink(missing_ok=True)
            return False
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    return True
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        continue  # reaped our own child; the next killpg(0) tells if the group is gone
                except ChildProcessError:
                    pass
                time.sleep(0.05)
            os.killpg(pid, signal.SIGKILL)
            return True
        finally:
            self.pid_path.unlink(missing_ok=True)
