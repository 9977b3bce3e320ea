"""`gridmart index reset`: start a new index when the chain under this home is another one
(services.chain_identity says when); the old index and spools are set aside, never deleted."""
from __future__ import annotations

import fcntl

import typer

from ledger_node.config import get_settings as ledger_settings
from ledger_node.errors import ConfigError
from marketplace.services.chain_identity import set_aside
from marketplace.settings import get_settings

app = typer.Typer(no_args_is_help=True)


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")) -> None:
    """Set the index (SQLite) and the FL and compute spools aside as *.old; the next start
    indexes the chain it finds. Members, products and points live on the chain, not here."""
    home = ledger_settings().home
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "up.lock", "a+") as lock:  # not under a running `gridmart up`
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise ConfigError(f"GRIDMART_HOME {home} is in use by {lock.read().strip() or 'another process'}: "
                              "stop it first") from None
        if not yes and not typer.confirm("set the index and the FL and compute spools aside and start a new index?"):
            raise typer.Exit(1)
        moves = set_aside(get_settings())
    for source, target in moves:
        typer.echo(f"set aside {source} -> {target.name}")
    typer.echo("nothing to set aside" if not moves else "the next `gridmart up` indexes the chain it finds")
