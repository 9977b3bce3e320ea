"""Entry point of the `gridmart` command.

Each area owns one module in this package exposing ``app`` (a Typer app);
this file only mounts them, so areas never edit each other's commands.
"""
from __future__ import annotations

import importlib
import sys

import typer

from ledger_node.errors import GridMartError

#: (sub-command name, module under marketplace.cli, help)
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("chain", "chain", "Start / stop the local Hardhat devnet."),
    ("deploy", "deploy", "Deploy (or reuse) the GridMart contracts."),
    ("wallet", "wallet", "Create and list encrypted wallet keystores."),
    ("member", "member", "Operator: admit, suspend and inspect member units."),
    ("ipfs", "ipfs", "Add, fetch and verify artifacts in the content store."),
    ("analytics", "analytics", "Train and run the analytics products."),
    ("heatmap", "heatmap", "Render power heat maps."),
    ("fl", "fl", "Federated-learning zone."),
]

app = typer.Typer(
    name="gridmart",
    help="GridMart: the power-grid big-data sharing marketplace.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    for name, module, help_text in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"marketplace.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"marketplace.cli.{module}":
                continue  # area not built yet
            raise
        sub = getattr(mod, "app")
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name, help=help_text)
        else:  # a plain command function
            app.command(name=name, help=help_text)(sub)


_mount()


def main() -> None:
    """Run the CLI; GridMart errors become one red line and exit code 1."""
    try:
        app()
    except GridMartError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
