"""`gridmart serve` (the API) and `gridmart up` (devnet + compute node + deploy + serve, the main job)."""
from __future__ import annotations

import fcntl
import os
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path

import typer

from ledger_node.chain import connect
from ledger_node.compute.process import ComputeNode
from ledger_node.compute.settings import MIN_TOKEN, get_compute_settings
from ledger_node.config import get_settings as ledger_settings, secure_home
from ledger_node.deploy import deploy
from ledger_node.devnet import Devnet, free_port
from ledger_node.errors import ConfigError
from ledger_node.wallets import create_wallet, keystore_dir, load_wallet

DEV_PASSWORD = "gridmart-dev"
DEVNET_CHAIN_ID = 31337


def serve(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000),
          log_level: str = typer.Option("info", help="uvicorn log level (warning hides access logs)")) -> None:
    """Serve the marketplace API (OpenAPI docs at /docs)."""
    import uvicorn

    from marketplace.app import create_app
    from marketplace.services import chain_identity
    from marketplace.services.context import Context
    from marketplace.settings import get_settings

    # what the server creates (database, session key, spools) is its own: remote-run's sandbox
    # user must not read it; folders made by older versions are fixed here too
    os.umask(0o077)
    secure_home()
    settings = get_settings()
    if settings.domain == "127.0.0.1:8000" and port != 8000:
        settings.domain = f"{host}:{port}"
    # uvloop and httptools (both dependencies) rather than asyncio's loop and h11: the redemption
    # hot path spends about a fifth of its CPU in the HTTP server
    ctx = Context.build(settings)
    chain_identity.check(ctx.engine, ctx.chain, settings)  # one line and no server if the index is another chain's
    uvicorn.run(create_app(settings, ctx, freeze_gc=True), host=host, port=port, log_level=log_level,
                loop="uvloop", http="httptools")


def up(port: int = typer.Option(8000)) -> None:
    """Start the devnet (unless GRIDMART_RPC_URL is set) and a compute node (unless
    GRIDMART_COMPUTE_NODES is set), deploy, and serve the marketplace."""
    started, node = None, None
    lock = hold_home(f"gridmart up (pid {os.getpid()}, http://127.0.0.1:{port})")  # until this process ends
    # uvicorn re-raises SIGTERM after its shutdown; make it an exit so the devnet is stopped below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not ledger_settings().rpc_url:
        started = Devnet.default().start()
        typer.echo(f"devnet ready at {started.url} (log: {started.log_path})")
    try:
        if not os.environ.get("GRIDMART_COMPUTE_NODES"):
            node = _start_compute_node()  # it inherits no password, secret or key (ComputeNode.start)
        w3 = connect()
        name = os.environ.get("GRIDMART_OPERATOR_WALLET", "operator")
        password = os.environ.get("GRIDMART_WALLET_PASSWORD")
        if not (keystore_dir() / f"{name}.json").exists():
            if w3.eth.chain_id != DEVNET_CHAIN_ID:
                raise ConfigError(f"no operator wallet {name!r}: create it with `gridmart wallet new {name}`")
            password = password or DEV_PASSWORD
            info = create_wallet(name, password)
            typer.echo(f"created devnet operator wallet {name} ({info.address}); password: $GRIDMART_WALLET_PASSWORD "
                       f"or {DEV_PASSWORD!r}")
        password = password or (DEV_PASSWORD if w3.eth.chain_id == DEVNET_CHAIN_ID else None)
        if password is None:
            raise ConfigError("set GRIDMART_WALLET_PASSWORD to unlock the operator wallet")
        os.environ["GRIDMART_WALLET_PASSWORD"] = password  # for serve's Context.build, which drops it once unlocked
        book, reused = deploy(w3, load_wallet(name, password))
        typer.echo(f"contracts {'reused' if reused else 'deployed'} on chain {book.chain_id}")
        typer.echo(f"marketplace: http://127.0.0.1:{port}  (API docs: http://127.0.0.1:{port}/docs)")
        typer.echo(_cli_hint(port))
        serve(host="127.0.0.1", port=port, log_level="info")
    finally:
        if node is not None:
            node.stop()
        if started is not None:
            started.stop()
        lock.close()


def _cli_hint(port: int) -> str:
    """How to reach this instance with the CLI from another terminal: `gridmart` is in the venv,
    and whatever this one was configured with by the environment the CLI needs too."""
    exports = {name: os.environ[name] for name, default in _SHARED_WITH_CLI.items()
               if os.environ.get(name) not in (None, "", default)}
    if port != 8000:
        exports["GRIDMART_API_URL"] = f"http://127.0.0.1:{port}"
    lines = ["the CLI, from another terminal:", f"  source {shlex.quote(str(Path(sys.executable).parent / 'activate'))}"]
    if exports:
        lines.append("  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in exports.items()))
    lines.append("  gridmart --help    (the README's first session starts with `gridmart wallet new`)")
    return "\n".join(lines)


#: what `gridmart up` and the CLI must agree on
_SHARED_WITH_CLI = {"GRIDMART_HOME": None, "GRIDMART_DEPLOYMENTS_DIR": None, "GRIDMART_DEVNET_PORT": "8545",
                    "GRIDMART_RPC_URL": None, "GRIDMART_IPFS_API": None}


def hold_home(holder: str):
    """Lock <GRIDMART_HOME>/up.lock for `holder` (held until the returned file is closed or the
    process ends): a second `gridmart up` on the same home would share its devnet, database
    and compute node with the first, and `gridmart index reset` must not move the index from
    under one; each refuses, naming the holder, and touches nothing."""
    home = ledger_settings().home
    home.mkdir(parents=True, exist_ok=True)
    fh = open(home / "up.lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        first = fh.read().strip() or "another process"
        fh.close()
        raise ConfigError(f"GRIDMART_HOME {home} is in use by {first}: stop it first, or give this one its own "
                          "GRIDMART_HOME") from None
    fh.seek(0)
    fh.truncate()
    fh.write(holder)
    fh.flush()
    return fh


def _start_compute_node() -> ComputeNode:
    """The `default` compute node on loopback, its token known only to it and to this API."""
    settings = get_compute_settings()
    if settings.token and len(settings.token) < MIN_TOKEN:
        settings.require_token()  # a token that is set but too short: say so rather than replace it
    token = settings.token or secrets.token_hex(24)
    node_port = settings.port if _port_free(settings.port) else free_port()
    node = ComputeNode(port=node_port, home=settings.root, token=token, workers=settings.workers).start()
    os.environ["GRIDMART_COMPUTE_NODES"] = f"default={node.url}"
    os.environ["GRIDMART_COMPUTE_TOKEN"] = token
    typer.echo(f"compute node ready at {node.url} (log: {node.log_path})")
    return node


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


COMMANDS = [serve, up]
