"""Marketplace commands (`gridmart publish`, `buy`, `redeem`, ...): every one goes through the HTTP API."""
from __future__ import annotations

import csv
import json
import os
import sys
import tarfile
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ledger_node.compute.bundle import MANIFEST
from ledger_node.content.ingest import ingest
from ledger_node.errors import GridMartError
from marketplace.client import ApiError, MarketClient

from . import sessions
from ._common import JsonOpt, PasswordOpt, emit, signer
from .bundle import manifest_of

WalletArg = typer.Option(..., "--wallet", "-w", help="keystore name of your wallet")


def api_url() -> str:
    return os.environ.get("GRIDMART_API_URL", "http://127.0.0.1:8000")


def connect(wallet: str | None, password: str | None, read_only: bool = False) -> MarketClient:
    """A client signed in as `wallet`. `read_only` commands reuse the session `gridmart login`
    (or any signed-in command) left, so they ask for no password while it lasts."""
    if wallet and read_only and (token := sessions.load(api_url(), wallet)):
        client = MarketClient(api_url())
        client.token = token
        try:
            client._request("GET", "/auth/me")
            return client
        except ApiError as exc:
            if exc.status != 401:
                raise
            sessions.drop(api_url(), wallet)  # the server forgot it (restarted with a new key): sign in again
    client = MarketClient(api_url(), signer(wallet, password) if wallet else None)
    if wallet:
        client.login()
        sessions.save(api_url(), wallet, client.token, client.token_expires)
    return client


def _bar(total: int | None, label: str) -> Progress:
    progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), transient=True)
    progress.add_task(label, total=total)
    return progress


def login(wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Sign in with your wallet (SIWE); read-only commands then need no password while the session lasts."""
    client = connect(wallet, password)
    me = client._request("GET", "/auth/me")
    emit(me, as_json, f"signed in as {me['address']}{' (operator)' if me['is_operator'] else ''}")


def publish(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="the artifact"),
    title: str = typer.Option(...), kind: str = typer.Option("data", help="data | tool | application"),
    description: str = typer.Option(""), tags: str = typer.Option("", help="comma-separated"),
    mode: str = typer.Option("download", help="download | interface | remote-run | federated"),
    terms: str = typer.Option("", help="licence terms"), runner: str = typer.Option(None, help="remote-run: analytics product"),
    encrypt: bool = typer.Option(False, help="encrypt the artifact (AES-256-GCM)"),
    previous: int = typer.Option(0, help="publish a new version of this product/certificate id"),
    held_on: str = typer.Option(None, "--held-on", help="compute-only data: the compute node that holds FILE "
                                "(added with `gridmart compute add-dataset`); only its CID is sent"),
    compute: Path = typer.Option(None, "--compute", exists=True, dir_okay=False,
                                 help="compute terms JSON: node, trusted_algorithms, approve_each, output_policy"),
    schema: bool = typer.Option(False, "--schema", help="CSV data: show its column names on the product page"),
    sample_rows: int = typer.Option(0, "--sample-rows", min=0, max=10,
                                    help="CSV data: show its first N rows (0-10) on the product page"),
    wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt,
) -> None:
    """Upload an artifact and list it, signed by your wallet (EIP-712)."""
    preview = _csv_preview(file, sample_rows) if schema or sample_rows else None  # read here, before encryption
    if (mode == "remote-run" and kind in ("application", "tool") and not runner) or _holds_manifest(file):
        manifest_of(file)  # before the wallet is opened: a bad bundle is one line naming the field
    metadata = {"title": title, "kind": kind, "description": description, "sharing_mode": mode, "licence_terms": terms,
                "tags": [t.strip() for t in tags.split(",") if t.strip()]}
    if runner:
        metadata["runner"] = runner
    if preview is not None:
        columns, rows = preview
        if schema:
            metadata["schema"] = {"format": "csv", "columns": columns}
        if rows:
            metadata["sample_rows"] = rows
    if compute is not None:
        metadata["compute"] = _compute_terms(compute)
    if held_on is not None:
        if mode != "compute-only" or encrypt:
            raise GridMartError("--held-on lists data that stays on your compute node: use it with --mode compute-only "
                                "and without --encrypt")
        if metadata.setdefault("compute", {}).setdefault("node", held_on) != held_on:
            raise GridMartError(f"--compute names node {metadata['compute']['node']!r} but --held-on {held_on!r}: "
                                "the jobs must run where the data is")
        with open(file, "rb") as fh:
            cid = ingest(fh, lambda *_: None).cid
        client = connect(wallet, password)
        client.register_held(held_on, cid)
        out = client.list_cid(cid, metadata, previous)
        emit({**out, "cid": cid}, as_json, f"certificate {out['certificate_id']} (product {out['product_id']}) "
                                           f"registered, CID {cid} held on {held_on}; waiting for the operator's approval")
        return
    client = connect(wallet, password)
    with _bar(file.stat().st_size, "uploading") as bar:
        out = client.publish(file, metadata, encrypt=encrypt, previous=previous,
                             progress=lambda n: bar.advance(bar.task_ids[0], n))
    emit(out, as_json, f"certificate {out['certificate_id']} (product {out['product_id']}) registered, "
                       f"CID {out['cid']}; waiting for the operator's approval")


def _csv_preview(file: Path, rows: int) -> tuple[list[str], list[list[str]]]:
    """(column names, the first `rows` rows) of a CSV file, as the product page shows them."""
    try:
        with open(file, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            sample = [row for _, row in zip(range(rows), reader)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GridMartError(f"--schema/--sample-rows read {file} as CSV and could not: {exc}") from None
    if not header:
        raise GridMartError(f"--schema/--sample-rows: {file} has no CSV header row")
    return header, sample


def _compute_terms(path: Path) -> dict:
    try:
        terms = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GridMartError(f"--compute {path}: not a JSON file ({exc})") from None
    if not isinstance(terms, dict):
        raise GridMartError(f"--compute {path}: must be a JSON object (node, trusted_algorithms, approve_each, "
                            "output_policy)")
    return terms


def _holds_manifest(file: Path) -> bool:
    """Whether the file is a tar with a bundle manifest at its root (then it must be a valid bundle)."""
    try:
        with tarfile.open(file, mode="r:*") as tar:
            return any(name.removeprefix("./") == MANIFEST for name in tar.getnames())
    except (tarfile.TarError, EOFError, OSError):
        return False


def approve(cert_id: int, wallet: str = WalletArg, password: str = PasswordOpt) -> None:
    """Operator: put a certificate on the shelf."""
    connect(wallet, password).approve(cert_id)
    typer.echo(f"certificate {cert_id} is on the shelf")


def withdraw(cert_id: int, wallet: str = WalletArg, password: str = PasswordOpt) -> None:
    """Operator or publisher: take a certificate off the shelf."""
    connect(wallet, password).withdraw(cert_id)
    typer.echo(f"certificate {cert_id} is off the shelf")


def plan(product_id: int, plan: str = typer.Option(..., "--plan", help="per-use | week | month | year"),
         price: int = typer.Option(..., help="points (0 withdraws the plan)"), uses: int = typer.Option(0),
         wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Publisher: offer a price plan for your product (signed by your wallet)."""
    out = connect(wallet, password).set_plan(product_id, plan, price, uses if plan == "per-use" else 0)
    emit(out, as_json, f"plan {plan} of product {product_id}: {price} points" + (f" for {uses} uses" if uses else ""))


def catalogue(q: str = typer.Option(None, help="search title and description"), kind: str = typer.Option(None),
              tag: str = typer.Option(None), publisher: str = typer.Option(None),
              all_: bool = typer.Option(False, "--all", help="include products not on the shelf"),
              as_json: bool = JsonOpt) -> None:
    """Browse the catalogue."""
    items = connect(None, None).catalogue(q=q, kind=kind, tag=tag, publisher=publisher, on_shelf=not all_)
    lines = [f"{p['id']:>5}  {p['kind']:<11} {p['status']:<9} {p['title']}  "
             + ", ".join(f"{pl['kind']} {pl['price']}pt" for pl in p["plans"])
             + (f"  by {p['publisher_name']}" if p.get("publisher_name") else "")
             + ("" if p["verified"] else "  [NOT VERIFIED: " + "; ".join(p["problems"]) + "]") for p in items]
    emit(items, as_json, "\n".join(lines) or "no products match")


def product(product_id: int, as_json: bool = JsonOpt) -> None:
    """A product page: description, plans, versions with their certificates."""
    p = connect(None, None).product(product_id)
    lines = [f"{p['title']} ({p['kind']}, {p['sharing_mode']}, {p['status']})", p["description"],
             "plans: " + (", ".join(f"{pl['kind']} {pl['price']}pt" for pl in p["plans"]) or "none")]
    if not p["verified"]:
        lines.insert(0, "WARNING: these fields do not match the chain: " + "; ".join(p["problems"]))
    lines += [f"  v{v['version']} certificate {v['id']}: CID {v['cid']} sha-256 {v['sha256'][:16]}… "
              f"block {v['block_number']} {v['status']}" for v in p["versions"]]
    emit(p, as_json, "\n".join(lines))


def buy(product_id: int, plan: str = typer.Option(..., "--plan"),
        yes: bool = typer.Option(False, "--yes", "-y", help="buy even if you already hold a licence for it"),
        wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Buy a plan with your points (signed by your wallet)."""
    client = connect(wallet, password)
    held = [lic for lic in client.licences() if lic["product_id"] == product_id and lic["active"]]
    if held and not yes:
        what = "; ".join(f"licence {lic['id']}" + (f" until {_when(lic['expires_at'])}" if lic["expires_at"] else "")
                         + (f", {lic['uses_left']} use(s) left" if lic["uses_left"] else "") for lic in held)
        question = f"you already hold product {product_id} ({what}); buying {plan} again adds to it. Buy?"
        if not sys.stdin.isatty():
            raise GridMartError(question.replace(". Buy?", ": pass --yes to buy anyway"))
        if not typer.confirm(question):
            raise typer.Exit(1)
    out = client.buy(product_id, plan)
    emit(out, as_json, f"licence {out['licence_id']}: paid {out['price']} points "
                       f"({out['fee']} to the operator); balance {out['balance']}")


def licences(wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Your licences."""
    items = connect(wallet, password, read_only=True).licences()
    emit(items, as_json, "\n".join(f"{lic['id']}  product {lic['product_id']}  "
                                   + (f"until {_when(lic['expires_at'])}" if lic["expires_at"] else "")
                                   + ("  " if lic["expires_at"] and lic["uses_left"] else "")
                                   + (f"{lic['uses_left']} use(s) left" if lic["uses_left"] else "")
                                   + f"  {'active' if lic['active'] else 'ended'}" for lic in items) or "no licences")


def points(wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Your points balance and history."""
    from datetime import timezone

    data = connect(wallet, password, read_only=True).points()

    def row(h: dict) -> str:
        when = (datetime.fromtimestamp(h["time"], timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
                if h.get("time") else f"block {h['block']}")
        product = (f"  product {h['product_id']} {h.get('product_title') or ''}".rstrip()
                   if h.get("product_id") is not None else "")
        return f"  {when}  {h['delta']:+5d}  {h.get('kind', 'transfer'):<15}{product}  {h['tx_hash']}"

    emit(data, as_json, "\n".join([f"balance: {data['balance']}"] + [row(h) for h in data["history"]]))


def redeem(licence_id: str = typer.Argument(None, help="the licence (0x…), or give --product"),
           product: int = typer.Option(None, "--product", help="redeem your licence for this product"),
           out: Path = typer.Option(None, help="download to this file"),
           input_file: Path = typer.Option(None, "--input", exists=True, help="remote-run: your data file"),
           purpose: str = typer.Option("download"),
           force: bool = typer.Option(False, "--force", help="replace an existing --out file"),
           wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Redeem a licence (signed voucher) and download, call or run the product."""
    if (licence_id is None) == (product is None):
        raise GridMartError("name the licence (`gridmart licences` lists yours) or pass --product N, not both")
    target = out or (Path("result.csv") if input_file is not None else None)
    if target is not None and target.exists() and not force:  # before a password prompt or a spent use
        raise GridMartError(f"{target} already exists: pass --force to replace it, or choose another --out")
    client = connect(wallet, password)
    if product is not None:
        licence_id = _licence_for(client.licences(), product)
    delivery = client.redeem(client.sign_voucher(licence_id, purpose))
    if input_file is not None:
        result = client.run(delivery, input_file)
        target = out or Path("result.csv")
        target.write_bytes(result)
        emit({**delivery, "result": str(target)}, as_json, f"result written to {target}")
        return
    if out is None:
        emit(delivery, as_json, f"delivery link (valid {delivery['expires_in']} s): {api_url()}{delivery['url']}")
        return
    expected, source = certified_sha256(licence_id, delivery)
    with _bar(delivery.get("size"), "downloading") as bar:
        client.download(delivery, out, progress=lambda n: bar.advance(bar.task_ids[0], n), expected_sha256=expected)
    emit({**delivery, "file": str(out), "sha256_source": source}, as_json,
         f"saved {out} (sha-256 {expected} verified against {source})")


def _licence_for(held: list[dict], product: int) -> str:
    """The one active licence this member holds for `product`."""
    active = [lic["id"] for lic in held if lic["product_id"] == product and lic["active"]]
    if not active:
        raise GridMartError(f"you hold no active licence for product {product}: buy one with "
                            f"`gridmart buy {product} --plan …`")
    if len(active) > 1:
        raise GridMartError(f"you hold {len(active)} licences for product {product} ({', '.join(active)}): "
                            "name the one to redeem")
    return active[0]


def certified_sha256(licence_id: str, delivery: dict) -> tuple[str, str]:
    """(sha-256, where it came from) of what this licence delivers, read from the chain: the
    licence's product, its newest version that has been on the shelf. Without chain access,
    the API's word, with a warning."""
    from ledger_node.contracts import Status, connect_gridmart

    try:
        gm = connect_gridmart()
        product_id = gm.licensing.licence(int(licence_id, 16)).product_id
        for cert_id in reversed(gm.products.history(product_id)):
            cert = gm.products.certificate(cert_id)
            if cert.status in (Status.ON_SHELF, Status.OFF_SHELF):
                return cert.sha256.hex(), f"certificate {cert_id} on chain"
    except Exception as exc:  # noqa: BLE001 - no chain configured or reachable: fall back, loudly
        typer.secho(f"warning: cannot read the certificate from the chain ({exc}); checking the download against "
                    "the marketplace's word only (set GRIDMART_RPC_URL and GRIDMART_DEPLOYMENTS_DIR)",
                    fg=typer.colors.YELLOW, err=True)
        return delivery["sha256"], "the marketplace's word (no chain access)"
    raise GridMartError(f"licence {licence_id}: its product has no approved certificate on chain; nothing to verify against")


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def income(wallet: str = WalletArg, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Operator: fee income."""
    data = connect(wallet, password, read_only=True)._request("GET", "/operator/income")
    emit(data, as_json, f"fee income {data['fee_income']} points over {data['sales']} sales; "
                        f"price bounds {data['price_bounds']}")


COMMANDS = [login, publish, approve, withdraw, plan, catalogue, product, buy, licences, points, redeem, income]
