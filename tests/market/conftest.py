"""The marketplace served over real HTTP (uvicorn), on the session Hardhat node and a real js-ipfs daemon."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account

from ledger_node.content.daemon import IpfsDaemon
from ledger_node.content.ipfs_rpc import RpcStore
from ledger_node.config import REPO_ROOT
from ledger_node.devnet import Devnet, free_port
from marketplace.app import create_app
from marketplace.client import MarketClient
from marketplace.db import make_engine
from marketplace.services.context import Context
from marketplace.settings import MarketplaceSettings


@pytest.fixture(scope="session")
def ipfs(tmp_path_factory) -> Iterator[IpfsDaemon]:
    daemon = IpfsDaemon(tmp_path_factory.mktemp("market-ipfs"))
    daemon.start()
    yield daemon
    daemon.stop()


def serve(app, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("marketplace did not start")
        time.sleep(0.05)
    return server, thread


@contextmanager
def running_market(gm, operator, ipfs, folder: Path, compute_node=None,
                   **settings: Any) -> Iterator[tuple[str, Context]]:
    """(base URL, context) of a marketplace served from `folder` on the session chain and IPFS
    daemon; with `compute_node`, its `default` node (jobs followed every 0.3 s)."""
    port = free_port()
    if compute_node is not None:
        settings = {"compute_nodes": f"default={compute_node.url}", "compute_token": compute_node.token,
                    "compute_spool": str(folder / "spool"), "jobs_interval_seconds": 0.3, **settings}
    config = MarketplaceSettings(database_url=f"sqlite:///{folder / 'market.db'}", fl_spool=str(folder / "fl-spool"),
                                 domain=f"127.0.0.1:{port}", session_secret="test-secret",
                                 anchor_interval_seconds=0.5, max_upload_mb=5, **settings)
    ctx = Context(settings=config, engine=make_engine(config.resolved_database_url()), operator=operator,
                  chain=gm, store=RpcStore(ipfs.api()), secret=b"test-secret")
    server, thread = serve(create_app(config, ctx), port)
    try:
        yield f"http://127.0.0.1:{port}", ctx
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def market(gm, operator, ipfs, tmp_path_factory) -> Iterator[tuple[str, Context]]:
    """(base URL, service context) of a running marketplace."""
    with running_market(gm, operator, ipfs, tmp_path_factory.mktemp("market")) as running:
        yield running


@pytest.fixture
def client(market, operator) -> Callable[..., MarketClient]:
    """A signed-in API client for `account` (default: the operator)."""
    url, _ = market

    def make(account=None, login: bool = True) -> MarketClient:
        c = MarketClient(url, account or operator)
        if login:
            c.login()
        return c

    return make


@pytest.fixture
def unit(client) -> Callable[..., tuple]:
    """Admit a fresh member through the API; returns (account, its signed-in client)."""

    def make(roles=("publisher", "subscriber"), name="unit"):
        account = Account.create()
        client().admit(account.address, name, b"identity of " + name.encode(), list(roles))
        return account, client(account)

    return make


@pytest.fixture
def listed(client, unit, tmp_path) -> Callable[..., tuple]:
    """listed(title, kind, plan, price) -> (publisher's client, product): a fresh publisher's
    random artifact, approved on shelf, with that plan."""

    def make(title: str, kind: str, plan: str, price: int, size: int = 1000):
        _, as_pub = unit(("publisher",), "pub")
        f = tmp_path / f"{title}.bin"
        f.write_bytes(os.urandom(size))
        product = as_pub.publish(f, {"title": title, "kind": kind})
        client().approve(product["certificate_id"])
        as_pub.set_plan(product["product_id"], plan, price)
        return as_pub, product

    return make


# ----------------------------------------------------------------- `gridmart up` as a user runs it

PASSWORD = "gridmart-dev"
SECRETS = {"GRIDMART_WALLET_PASSWORD": PASSWORD, "GRIDMART_SESSION_SECRET": "a-session-secret-of-the-api",
           "AWS_SECRET_ACCESS_KEY": "an-aws-key"}


def node_processes(home: Path) -> list[int]:
    """pids of compute nodes whose home is under `home`, by their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ledger_node.compute.node" in cmdline and f"GRIDMART_COMPUTE_HOME={home}".encode() in environ:
            found.append(int(entry.name))
    return found


def up_environment(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a `gridmart up` whose home, address books and index are in `folder`
    (the same folder again: the same instance restarted), with what a user may well have
    exported (SECRETS: none of it may reach the compute node)."""
    env = {**os.environ, "GRIDMART_HOME": str(folder / "home"), "GRIDMART_DEVNET_PORT": str(free_port()),
           "GRIDMART_DEPLOYMENTS_DIR": str(folder / "deployments"), "GRIDMART_COMPUTE_PORT": str(free_port()),
           "GRIDMART_DATABASE_URL": f"sqlite:///{folder / 'market.db'}"}
    for name in ("GRIDMART_RPC_URL", "GRIDMART_COMPUTE_NODES", "GRIDMART_COMPUTE_TOKEN", "GRIDMART_IPFS_API",
                 "GRIDMART_DOMAIN"):
        env.pop(name, None)
    return {**env, **SECRETS, **extra}


@contextmanager
def gridmart_up(folder: Path, **extra: str) -> Iterator[tuple[str, Path, subprocess.Popen, Path, dict]]:
    """(url, home, process, log, environment) of `gridmart up` serving from `folder`; stopped
    after (SIGTERM, as Ctrl-C; then whatever it left)."""
    env = up_environment(folder, **extra)
    home, port = folder / "home", free_port()
    logs = sorted(folder.glob("up-*.log"))
    log_path = folder / f"up-{len(logs) + 1}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "marketplace.cli.main", "up", "--port", str(port)], env=env,
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gridmart up did not serve: " + log_path.read_text()[-2000:])
            time.sleep(0.5)
        yield url, home, proc, log_path, env
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in node_processes(home / "compute"):
            os.kill(pid, signal.SIGKILL)
        Devnet(port=0, workdir=home / "devnet").stop()  # if up itself was killed
        log.close()
