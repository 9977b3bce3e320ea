"""`gridmart chain up|down|status`: the local devnet (anvil or Hardhat, ledger_node.devnet)."""
from __future__ import annotations

import typer

from ledger_node.chain import connect
from ledger_node.config import get_settings
from ledger_node.devnet import Devnet, rpc_ready

from ._common import JsonOpt, emit

app = typer.Typer(no_args_is_help=True)


@app.command()
def up() -> None:
    """Start the devnet on 127.0.0.1 (no-op if it already runs)."""
    if get_settings().rpc_url:
        typer.echo(f"GRIDMART_RPC_URL is set ({get_settings().rpc_url}); not starting a local devnet")
        return
    net = Devnet.default().start()
    typer.echo(f"devnet ready at {net.url} (log: {net.log_path})")


@app.command()
def down() -> None:
    """Stop the devnet started by `gridmart chain up`."""
    stopped = Devnet.default().stop()
    typer.echo("devnet stopped" if stopped else "no devnet was running")


@app.command()
def status(as_json: bool = JsonOpt) -> None:
    """Show the endpoint, chain id and latest block."""
    url = get_settings().effective_rpc_url
    if not rpc_ready(url):
        emit({"url": url, "up": False}, as_json, f"{url}: not reachable (start it with `gridmart chain up`)")
        raise typer.Exit(1)
    w3 = connect(url)
    info = {"url": url, "up": True, "chain_id": w3.eth.chain_id, "block": w3.eth.block_number}
    emit(info, as_json, f"{url}: chain {info['chain_id']}, block {info['block']}")
