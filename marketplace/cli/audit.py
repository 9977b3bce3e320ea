"""`gridmart audit product|licence|usage|job|member|fl|consistency`: verify from the chain and the bytes.

Every command but `consistency` reads only the JSON-RPC endpoint (GRIDMART_RPC_URL), the
address book (GRIDMART_DEPLOYMENTS_DIR), the files you pass and, with --ipfs-api, the
content that certificates name; `consistency` also reads
the marketplace database (GRIDMART_DATABASE_URL) and its content store (GRIDMART_IPFS_API or
the embedded store, or --ipfs-api). Exit status: 0 all checks passed,
2 a check failed, 1 the audit could not run.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer

from ledger_node.audit import (
    Ledger,
    Report,
    audit_fl,
    audit_job,
    audit_licence,
    audit_member,
    audit_product,
    audit_usage,
    find_by_artifact,
    parse_licence_id,
    render,
)
from ledger_node.errors import GridMartError

app = typer.Typer(no_args_is_help=True)

JsonFlag = typer.Option(False, "--json", help="print the report as JSON")
HtmlOpt = typer.Option(None, "--html", help="also write a one-page HTML report to this file")
RpcOpt = typer.Option(None, "--rpc-url", envvar="GRIDMART_RPC_URL", help="JSON-RPC endpoint (default: local devnet)")
BookOpt = typer.Option(None, "--deployments-dir", envvar="GRIDMART_DEPLOYMENTS_DIR",
                       help="folder holding the address book <chainId>.json")


@app.callback()
def _connection(ctx: typer.Context, rpc_url: str | None = RpcOpt, deployments_dir: Path | None = BookOpt) -> None:
    """Where the chain and its address book are; nothing else is trusted."""
    ctx.obj = (rpc_url, deployments_dir)


def _run(ctx: typer.Context, build: Callable[[Ledger], list[Report]], as_json: bool, html: Path | None) -> None:
    rpc_url, deployments_dir = ctx.obj or (None, None)
    try:
        reports = build(Ledger.connect(rpc_url, deployments_dir))
    except ValueError as exc:
        raise GridMartError(str(exc)) from None
    typer.echo(render(reports, "json" if as_json else "text"))
    if html is not None:
        html.write_text(render(reports, "html"))
    if not all(r.passed for r in reports):
        raise typer.Exit(2)


@app.command()
def product(ctx: typer.Context, target: str = typer.Argument(..., help="certificate id, or the artifact file to look up"),
            metadata: Path | None = typer.Option(None, help="the listing metadata (canonical JSON) to check"),
            ipfs_api: str | None = typer.Option(None, help="IPFS RPC API: also verify the stored bytes"),
            as_json: bool = JsonFlag, html: Path | None = HtmlOpt) -> None:
    """A certificate: artifact hashes, signature, signer's role at that block, versions, status history."""
    path = Path(target)
    data = path.read_bytes() if path.is_file() else None
    if data is None and not target.isdigit():
        raise GridMartError(f"{target!r} is neither a certificate id nor a readable file")
    meta = metadata.read_bytes() if metadata else None
    store = None
    if ipfs_api:
        from ledger_node.content.ipfs_rpc import RpcStore
        store = RpcStore(ipfs_api)

    def build(ledger: Ledger) -> list[Report]:
        ids = [int(target)] if data is None else find_by_artifact(ledger, data)
        if not ids:
            raise GridMartError(f"no certificate on chain names the sha-256 or CID of {target}: "
                                "the file differs from every certified artifact")
        return [audit_product(ledger, i, data, meta, store) for i in ids]

    _run(ctx, build, as_json, html)


@app.command()
def licence(ctx: typer.Context, licence_id: str = typer.Argument(..., help="licence id (0x hex or decimal)"),
            as_json: bool = JsonFlag, html: Path | None = HtmlOpt) -> None:
    """A licence: purchases with the 94/6 split, expiry or uses, every redemption."""
    _run(ctx, lambda ledger: [audit_licence(ledger, parse_licence_id(licence_id))], as_json, html)


@app.command()
def usage(ctx: typer.Context, bundle: Path = typer.Argument(..., help="proof bundle JSON (GET /usage/<id>/proof)"),
          as_json: bool = JsonFlag, html: Path | None = HtmlOpt) -> None:
    """A usage record: its Merkle inclusion proof against the anchored root."""
    doc = _read_bundle(bundle)
    _run(ctx, lambda ledger: [audit_usage(ledger, doc)], as_json, html)


def _job_proof(target: str, wallet: str | None) -> dict:
    """The proof bundle in file `target`, or job `target`'s from the marketplace (only the
    chain vouches for it: the audit checks it there)."""
    if Path(target).is_file() or not target.isdigit():
        return _read_bundle(Path(target))
    if wallet is None:
        raise GridMartError(f"to audit job {target} by id, pass --wallet (one allowed to see it), "
                            "or pass its proof file from `gridmart job proof`")
    from .market import connect

    return connect(wallet, None, read_only=True).job_proof(int(target))


def _read_bundle(bundle: Path) -> dict:
    try:
        doc = json.loads(bundle.read_text())
    except (OSError, ValueError) as exc:
        raise GridMartError(f"cannot read the proof bundle {bundle}: {exc}") from None
    if not isinstance(doc, dict) or "record" not in doc:
        raise GridMartError(f"{bundle} is not a proof bundle (it has no 'record')")
    return doc


@app.command()
def job(ctx: typer.Context, target: str = typer.Argument(..., help="a job id (its proof is fetched with --wallet), "
                                                               "or a proof bundle JSON (`gridmart job proof ID`)"),
        wallet: str | None = typer.Option(None, "--wallet", "-w", help="with a job id: the holder's, data owner's, "
                                          "operator's or an auditor's wallet (the proof is checked against the chain)"),
        output: Path | None = typer.Option(None, "--output", exists=True, dir_okay=False,
                                           help="the job's result file, checked against the record"),
        metadata: Path | None = typer.Option(None, "--metadata", exists=True, dir_okay=False,
                                             help="compute-only data: the product's certified metadata JSON "
                                                  "(checks the algorithm was one its publisher trusts)"),
        as_json: bool = JsonFlag, html: Path | None = HtmlOpt) -> None:
    """A compute job: its record anchored on chain, naming the certified product, algorithm and output."""
    doc = _job_proof(target, wallet)
    out = output.read_bytes() if output else None
    meta = metadata.read_bytes() if metadata else None
    _run(ctx, lambda ledger: [audit_job(ledger, doc, out, meta)], as_json, html)


@app.command()
def member(ctx: typer.Context, address: str, as_json: bool = JsonFlag, html: Path | None = HtmlOpt) -> None:
    """A member: admission, roles, suspensions, points balance rebuilt from events."""
    _run(ctx, lambda ledger: [audit_member(ledger, address)], as_json, html)


@app.command()
def fl(ctx: typer.Context, task_id: int,
       ipfs_api: str | None = typer.Option(None, help="IPFS RPC API: also verify the task certificate "
                                                       "and the initial model it names"),
       as_json: bool = JsonFlag, html: Path | None = HtmlOpt) -> None:
    """A federated task: its certificate, rounds, model CIDs, shares summing to 10,000, rewards paid."""
    store = None
    if ipfs_api:
        from ledger_node.content.ipfs_rpc import RpcStore
        store = RpcStore(ipfs_api)
    _run(ctx, lambda ledger: [audit_fl(ledger, task_id, store)], as_json, html)


@app.command()
def consistency(ctx: typer.Context, ipfs_api: str | None = typer.Option(
                    None, help="IPFS RPC API of the marketplace's store (default: GRIDMART_IPFS_API, else the embedded store)"),
                store: bool = typer.Option(True, help="also read back and re-hash the stored bytes of every certificate"),
                as_json: bool = JsonFlag, html: Path | None = HtmlOpt) -> None:
    """Replay every event and list each divergence of the marketplace database (and store) from the chain."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from ledger_node.content import open_store
    from marketplace.db import make_engine
    from marketplace.services.consistency import audit_consistency
    from marketplace.settings import MarketplaceSettings

    engine = make_engine(MarketplaceSettings().resolved_database_url())
    content = None
    if store:
        if ipfs_api:
            from ledger_node.content.ipfs_rpc import RpcStore
            content = RpcStore(ipfs_api)
        else:
            content = open_store()
    with Progress("re-hashing stored artifacts", BarColumn(), MofNCompleteColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("store", total=None)
        _run(ctx, lambda ledger: [audit_consistency(ledger, engine, content,
                                                    lambda done, total: bar.update(task, completed=done, total=total))],
             as_json, html)
