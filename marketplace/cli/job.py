"""`gridmart job run|list|status|logs|cancel|approve|reject|result|proof`: compute jobs (docs/compute.md).

`run` redeems a licence for a bundle application (or compute-only data), starts the job,
follows it with a progress bar and saves the result; the others follow jobs already started.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ledger_node.content.cid import cid_to_bytes
from ledger_node.errors import GridMartError
from marketplace.client import ApiError, MarketClient

from ._common import JsonOpt, PasswordOpt, emit
from .market import WalletArg, connect

app = typer.Typer(no_args_is_help=True)

FINISHED = ("done", "failed", "cancelled", "rejected")
OutOpt = typer.Option(None, "--out", "-o", help="save the result here (default job-<id>-result)")


def _free(out: Path | None) -> None:
    """Refuse an existing --out before anything is spent."""
    if out is not None and out.exists():
        raise GridMartError(f"{out} already exists: choose another --out or remove it")


@app.command()
def run(licence_id: str = typer.Argument(..., help="your licence id (0x…)"),
        input_file: Path = typer.Option(None, "--input", "-i", exists=True, dir_okay=False,
                                        help="your input file (an application's input)"),
        input_cid: str = typer.Option(None, "--input-cid", help="instead of --input: the CID of one of your earlier "
                                      "job results (to chain jobs)"),
        algorithm: Path = typer.Option(None, "--algorithm", exists=True, dir_okay=False,
                                       help="compute-only data: your algorithm, a bundle file"),
        algorithm_product: int = typer.Option(None, "--algorithm-product", min=1,
                                              help="compute-only data: a certified tool's product id as the algorithm"),
        out: Path = OutOpt, detach: bool = typer.Option(False, "--detach", help="print the job id and return"),
        wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Redeem LICENCE_ID, start a job on the product's compute node, follow it, save its result."""
    if algorithm is not None and algorithm_product is not None:
        raise GridMartError("pass either --algorithm (a bundle file) or --algorithm-product (a certified tool), not both")
    if input_file is not None and input_cid is not None:
        raise GridMartError("pass either --input (a file) or --input-cid (an earlier result), not both")
    _free(out)
    client = connect(wallet, password)
    _fits(client, licence_id, input_file, input_cid, algorithm, algorithm_product)  # before a use is spent
    delivery = client.redeem(client.sign_voucher(licence_id, "run"))
    job = client.start_job(delivery, input_file, algorithm, algorithm_product, input_cid)
    if detach or job["state"] == "awaiting-approval":
        note = " (the data owner must approve it first: follow it with `gridmart job status`)" \
            if job["state"] == "awaiting-approval" else ""
        emit(job, as_json, f"job {job['id']} {job['state']}{note}")
        return
    _finish(client, _follow(client, job, quiet=as_json), out, as_json)


@app.command("list")
def list_jobs(wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Your jobs, and requests to run on your compute-only data."""
    rows = connect(wallet, password, read_only=True).jobs()
    lines = [f"{j['id']:>5}  {j['state']:<18} {j['progress']:>4.0%}  product {j['product_id']:<4} "
             f"{_when(j['created_at'])}" + (f"  {j['error'].splitlines()[0]}" if j.get("error") else "")
             for j in rows]
    emit(rows, as_json, "\n".join(lines) if lines else "no jobs yet")


@app.command()
def status(job_id: int, wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """One job: state, progress, environment, output, error."""
    job = connect(wallet, password, read_only=True).job(job_id)
    emit(job, as_json, _describe(job))


@app.command()
def logs(job_id: int, follow: bool = typer.Option(False, "--follow", "-f", help="keep printing until the job ends"),
         wallet: str = WalletArg, password: str = PasswordOpt) -> None:
    """The job's log (what its entry point printed)."""
    client = connect(wallet, password, read_only=True)
    offset = 0
    while True:
        text, offset = client.job_logs(job_id, offset)
        if text:
            typer.echo(text, nl=False)
        if not follow or client.job(job_id)["state"] in FINISHED:
            if follow:  # what it printed between the last read and its end
                typer.echo(client.job_logs(job_id, offset)[0], nl=False)
            return
        time.sleep(1)


@app.command()
def cancel(job_id: int, wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Cancel a job that has not ended."""
    job = connect(wallet, password).cancel_job(job_id)
    emit(job, as_json, f"job {job_id} {job['state']}")


@app.command()
def approve(job_id: int, wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Data owner: let this request's algorithm run on your compute-only data."""
    job = connect(wallet, password).decide_job(job_id, approve=True)
    emit(job, as_json, f"job {job_id} approved: {job['state']}")


@app.command()
def reject(job_id: int, wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Data owner: refuse this request (nothing runs)."""
    job = connect(wallet, password).decide_job(job_id, approve=False)
    emit(job, as_json, f"job {job_id} {job['state']}")


@app.command()
def result(job_id: int, out: Path = OutOpt, wallet: str = WalletArg, password: str = PasswordOpt,
           as_json: bool = JsonOpt) -> None:
    """Save a finished job's output, checked against its recorded sha-256."""
    _free(out)
    client = connect(wallet, password, read_only=True)
    _finish(client, client.job(job_id), out, as_json)


@app.command()
def proof(job_id: int, out: Path = typer.Option(..., "--out", "-o", help="write the proof bundle JSON here"),
          wallet: str = WalletArg, password: str = PasswordOpt) -> None:
    """The job's anchored record and Merkle proof, for `gridmart audit job`."""
    _free(out)
    out.write_text(json.dumps(connect(wallet, password, read_only=True).job_proof(job_id), indent=2))
    typer.echo(f"wrote {out}; verify it with `gridmart audit job {out}`")


# ----------------------------------------------------------------- helpers

def _fits(client: MarketClient, licence_id: str, input_file: Path | None, input_cid: str | None,
          algorithm: Path | None, algorithm_product: int | None) -> None:
    """Refuse options that do not fit the licence's product before redeeming spends a use."""
    try:
        wanted = int(licence_id, 16) if licence_id.lower().startswith("0x") else int(licence_id)
    except ValueError:
        raise GridMartError(f"{licence_id!r} is not a licence id: give the 0x… id `gridmart licences` shows") from None
    held = next((lic for lic in client.licences() if int(lic["id"], 16) == wanted), None)
    if held is None:
        raise GridMartError(f"licence {licence_id} is not one of yours: see `gridmart licences`")
    product = client.product(held["product_id"])
    mode = product.get("sharing_mode")
    if mode == "compute-only":
        if (algorithm is None) == (algorithm_product is None):
            raise GridMartError(f"product {held['product_id']} is compute-only data: pass the algorithm to run on it, "
                                "--algorithm BUNDLE or --algorithm-product ID")
    elif mode == "remote-run":
        if algorithm is not None or algorithm_product is not None:
            raise GridMartError(f"product {held['product_id']} runs its own bundle: pass only --input or --input-cid")
    else:
        raise GridMartError(f"product {held['product_id']} is shared as {mode}, not run as a job: use `gridmart redeem`")
    if input_cid is not None:
        cid_to_bytes(input_cid)  # a malformed one is one line naming it


def _follow(client: MarketClient, job: dict, quiet: bool = False) -> dict:
    """Poll the job until it ends, with a progress bar of its state and progress."""
    with Progress(SpinnerColumn(), TextColumn("job {task.fields[id]} [bold]{task.fields[state]}[/]"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), transient=True, disable=quiet) as bar:
        task = bar.add_task("job", total=1.0, id=job["id"], state=job["state"])
        while job["state"] not in FINISHED:
            time.sleep(0.5)
            job = client.job(job["id"])
            bar.update(task, completed=job["progress"] or 0.0, state=job["state"])
    return job


def _finish(client: MarketClient, job: dict, out: Path | None, as_json: bool) -> None:
    if job["state"] != "done":
        emit(job, as_json, _describe(job))
        raise typer.Exit(1)
    target = out or Path(f"job-{job['id']}-result")
    _free(target)
    for _ in range(30):  # a done job's output may still be on its way from the node
        try:
            saved = client.job_result(job["id"], target)
            break
        except ApiError as exc:
            if exc.status != 503:
                raise
            time.sleep(1)
    else:
        raise GridMartError(f"job {job['id']} is done but its result has not reached the marketplace yet: "
                            f"retry `gridmart job result {job['id']}`")
    emit({**job, "file": saved["file"]}, as_json,
         f"job {job['id']} done: result saved to {saved['file']} ({saved['size']} bytes, sha-256 {saved['sha256']})")


def _describe(job: dict) -> str:
    lines = [f"job {job['id']}: {job['state']} ({job['progress']:.0%}), product {job['product_id']}, "
             f"node {job['node']}, started {_when(job['created_at'])}"]
    if job.get("finished_at"):
        lines.append(f"  ended    {_when(job['finished_at'])}")
    if job.get("env_hash"):
        lines.append(f"  env      {job['env_hash']}")
    if job.get("output"):
        lines.append(f"  output   {job['output']['cid']} ({job['output']['size']} bytes)")
    if job.get("error"):
        lines.append("  error    " + job["error"].replace("\n", "\n           "))
    return "\n".join(lines)


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"
