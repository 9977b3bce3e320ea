"""Entry point of the `gridmart` command.

Each area owns one module in this package exposing ``app`` (a Typer app);
this file only mounts them, so areas never edit each other's commands. Only the
module of the command being run is imported (analytics and FL pull in heavy
libraries); the others are listed by name for `--help`.
"""
from __future__ import annotations

import importlib
import sys

import typer

from ledger_node.errors import GridMartError

#: (sub-command name, module under marketplace.cli, help)
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("chain", "chain", "Start / stop the local devnet (anvil, keeping its state; or Hardhat)."),
    ("deploy", "deploy", "Deploy (or reuse) the GridMart contracts."),
    ("wallet", "wallet", "Create and list encrypted wallet keystores."),
    ("member", "member", "Operator: admit, suspend and inspect member units."),
    ("ipfs", "ipfs", "Add, fetch and verify artifacts in the content store."),
    ("analytics", "analytics", "Train and run the analytics products."),
    ("heatmap", "heatmap", "Render power heat maps."),
    ("fl", "fl", "Federated-learning zone."),
    ("audit", "audit", "Verify certificates, licences, usage and FL records from the chain."),
    ("council", "council", "Consortium council: propose, approve, cancel and execute admin actions behind the timelock."),
    ("bundle", "bundle", "Check and pack product bundles (an application's code, pinned environment and contract)."),
    ("compute", "compute", "Run a compute node; add compute-only datasets to it."),
    ("job", "job", "Follow, cancel and fetch compute jobs."),
    ("index", "index", "Start a new index when the chain under this home is another one."),
]
#: modules whose COMMANDS list is mounted at the top level
TOP_LEVEL_MODULES = ("market", "serve")


def build_app(load: set[str] | None = None) -> typer.Typer:
    """The CLI with the sub-apps in `load` imported (all when None), the rest as placeholders."""
    app = typer.Typer(name="gridmart", help="GridMart: the power-grid big-data sharing marketplace.",
                      no_args_is_help=True, pretty_exceptions_enable=False)
    for module in TOP_LEVEL_MODULES:
        for command in importlib.import_module(f"marketplace.cli.{module}").COMMANDS:
            app.command()(command)
    for name, module, help_text in SUBCOMMANDS:
        if load is not None and name not in load:  # listed for --help, imported only when run
            app.add_typer(typer.Typer(), name=name, help=help_text)
            continue
        try:
            sub = importlib.import_module(f"marketplace.cli.{module}").app
        except ModuleNotFoundError as exc:
            if exc.name != f"marketplace.cli.{module}":
                raise
            continue
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name, help=help_text)
        else:  # a plain command function
            app.command(name=name, help=help_text)(sub)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; GridMart errors become one red line and exit code 1."""
    args = sys.argv[1:] if argv is None else argv
    invoked = next((a for a in args if not a.startswith("-")), None)
    try:
        build_app({invoked} if invoked else set())(args=args)
    except GridMartError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)


def __getattr__(name: str):
    if name == "app":  # `from marketplace.cli.main import app`: the full CLI, e.g. for CliRunner
        return build_app()
    raise AttributeError(name)


if __name__ == "__main__":
    main()
