"""`gridmart compute serve|add-dataset`: run a compute node; add compute-only data to it (docs/compute.md).

Datasets are added on the data owner's machine straight into the node's store, never over
the network; the node then runs approved algorithms beside them and returns only outputs.
"""
from __future__ import annotations

from pathlib import Path

import typer

from ledger_node.compute import datasets
from ledger_node.compute.settings import get_compute_settings

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


@app.command()
def serve(port: int = typer.Option(None, help="port to bind (default GRIDMART_COMPUTE_PORT, 8700)")) -> None:
    """Run the compute node on GRIDMART_COMPUTE_HOST (127.0.0.1) with GRIDMART_COMPUTE_TOKEN."""
    from ledger_node.compute.node import serve as serve_node

    settings = get_compute_settings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    serve_node(settings)


@app.command("add-dataset")
def add_dataset(file: Path = typer.Argument(..., help="the dataset file"),
                publisher: str = typer.Option(..., help="the data product publisher's 0x… address"),
                home: Path = typer.Option(None, help="the node's folder (default GRIDMART_COMPUTE_HOME)")) -> None:
    """Copy FILE into the node's dataset store; prints its CID, sha-256 and size."""
    dataset = datasets.add((home or get_compute_settings().root).resolve(), file, publisher)
    typer.echo(f"cid     {dataset.cid}\nsha256  {dataset.sha256}\nsize    {dataset.size}")
