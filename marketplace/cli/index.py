"""`gridmart index reset`: start a new index when the chain under this home is another one
(services.chain_identity says when); the old index and spools are set aside, never deleted."""
from __future__ import annotations

import os

import typer

from marketplace.cli.serve import hold_home
from marketplace.services.chain_identity import set_aside
from marketplace.settings import get_settings

app = typer.Typer(no_args_is_help=True)


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")) -> None:
    """Set the index (SQLite) and the FL and compute spools aside as *.old; the next start
    indexes the chain it finds. Members, products and points live on the chain, not here."""
    with hold_home(f"gridmart index reset (pid {os.getpid()})"):  # not under a running `gridmart up`
        if not yes and not typer.confirm("set the index and the FL and compute spools aside and start a new index?"):
            raise typer.Exit(1)
        moves = set_aside(get_settings())
    for source, target in moves:
        typer.echo(f"set aside {source} -> {target.name}")
    typer.echo("nothing to set aside" if not moves else "the next `gridmart up` indexes the chain it finds")
