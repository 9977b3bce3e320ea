"""`gridmart fl`: the federated-learning zone from the command line.

Owner: `create` (HE keys + task), `grant` (seal keys to joined partners, start),
`fund` (escrow a points reward pool), `publish` (decrypt the final model, certify it
as a new version of the tool product, finalise the task: the pool is paid out).
Partner: `join`, then `train` on its own SGCC-format CSV; only encrypted
updates leave the machine. Features come from analytics; the protocol from
fl_coordinator. The zone lives in the marketplace app (GRIDMART_API_URL); a
stand-alone coordinator (python -m fl_coordinator.server) records in memory only.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from eth_account import Account
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fl_coordinator import he
from fl_coordinator.dp import DPConfig
from fl_coordinator.errors import FLError
from fl_coordinator.model import FedMLPClassifier
from fl_coordinator.partner import Coordinator, run_partner
from fl_coordinator.strategy import STRATEGIES, TRAINING_KEYS, FedAvg, FedProx
from ledger_node.errors import GridMartError

from ._common import PasswordOpt, signer

app = typer.Typer(no_args_is_help=True, help="Federated-learning zone: tasks, partners, rounds.")

COORD = typer.Option("http://127.0.0.1:8000", "--coordinator", envvar=["GRIDMART_FL_URL", "GRIDMART_API_URL"],
                     help="Base URL of the FL coordinator (the marketplace, or a stand-alone coordinator).")
KEY = typer.Option(None, "--key-file", envvar="GRIDMART_FL_KEY_FILE",
                   help="File holding this wallet's hex private key (or use --wallet).")
WALLET = typer.Option(None, "--wallet", "-w", help="Keystore name of this wallet (or use --key-file).")
TASK = typer.Option(..., "--task", help="Task id (0x...).")


def _key(path: Path | None, wallet: str | None, password: str | None) -> str:
    """The signing key, from a keystore (--wallet) or a hex key file (--key-file)."""
    if wallet:
        return signer(wallet, password).key.hex()
    if path is None:
        raise GridMartError("name your wallet: --wallet <keystore name> or --key-file <hex key file>")
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise GridMartError(f"cannot read key file {path} ({exc.strerror}); pass --key-file") from None
    if len(text.removeprefix("0x")) != 64:
        raise GridMartError(f"{path} must hold a 32-byte hex private key")
    return text


def prepare_partner_data(X: np.ndarray, y: np.ndarray, val_frac: float, seed: int):
    """Stratified train/validation split, standardized with the partner's own training statistics."""
    if len(np.unique(y)) < 2:
        raise GridMartError("the data needs both honest (FLAG=0) and theft (FLAG=1) customers")
    X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=val_frac, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), y_tr, scaler.transform(X_val), y_val


def load_partner_data(csv: Path, val_frac: float, seed: int):
    """SGCC CSV (CONS_NO, FLAG, one column per day) -> standardized feature arrays."""
    from analytics.theft.features import extract_features

    try:
        df = pd.read_csv(csv)
    except (OSError, ValueError) as exc:
        raise GridMartError(f"cannot read {csv} as an SGCC CSV ({exc})") from None
    if "FLAG" not in df.columns:
        raise GridMartError(f"{csv} has no FLAG column; expected SGCC format (CONS_NO, FLAG, days...)")
    return prepare_partner_data(extract_features(df), df["FLAG"].to_numpy(dtype=int), val_frac, seed)


@app.command()
def create(coordinator: str = COORD, key_file: Path | None = KEY, wallet: str | None = WALLET,
           password: str | None = PasswordOpt,
           secret: Path = typer.Option(..., help="Where to write the HE secret key (keep it private)."),
           name: str = typer.Option("theft-detection", help="Task name."),
           backend: str = typer.Option("ckks", help="ckks | paillier | plain (plain: comparison only)."),
           n_features: int = typer.Option(0, help="Input features; 0 = the analytics theft features."),
           hidden: str = typer.Option("16", help="Hidden layer sizes, comma separated; empty = logistic regression."),
           rounds: int = 5, min_partners: int = 2, round_seconds: float = 60.0,
           epochs: int = 1, lr: float = 0.05, batch_size: int = 64,
           strategy: str = typer.Option("fedavg", help="fedavg | fedprox (for partners whose data differ)."),
           prox_mu: float = typer.Option(0.01, help="fedprox: weight of the proximal term mu/2 ||w - w_global||^2."),
           dp_clip: float = typer.Option(0.0, help="DP clipping norm; 0 = no DP."),
           dp_noise: float = typer.Option(1.0, help="DP noise multiplier (sigma / clip)."),
           dp_delta: float = 1e-5, seed: int = 0,
           product: int = typer.Option(0, help="Your tool product this trains a new version of (0: name it at publish)."),
           as_json: bool = typer.Option(False, "--json")):
    """Create a task: HE keys stay with you; the coordinator gets the public context."""
    if not n_features:
        from analytics.theft.features import FEATURE_NAMES
        n_features = len(FEATURE_NAMES)
    sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    model = FedMLPClassifier(hidden=sizes, lr=lr, epochs=epochs, batch_size=batch_size,
                             random_state=seed).init_weights(n_features)
    training = {k: getattr(model, k) for k in TRAINING_KEYS}
    if strategy not in STRATEGIES:
        raise GridMartError(f"unknown --strategy {strategy!r}: use {' or '.join(sorted(STRATEGIES))}")
    rule = FedProx(prox_mu, **training) if strategy == FedProx.name else FedAvg(**training)
    keyset = he.generate(backend)
    secret.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(he.dump_secret(keyset))
    dp = DPConfig(dp_clip, dp_noise, dp_delta) if dp_clip > 0 else None
    task = Coordinator(coordinator, _key(key_file, wallet, password)).create_task(
        name=name, model=model, keyset=keyset, rounds=rounds, min_partners=min_partners,
        round_seconds=round_seconds, strategy=rule, dp=dp, seed=seed, product_id=product)
    typer.echo(json.dumps(task) if as_json else task["task_id"])


@app.command()
def join(coordinator: str = COORD, key_file: Path | None = KEY, wallet: str | None = WALLET,
         password: str | None = PasswordOpt, task: str = TASK):
    """Join a task as a partner (your wallet's public key receives the sealed HE key)."""
    c = Coordinator(coordinator, _key(key_file, wallet, password))
    c.join(task)
    typer.echo(f"joined {task} as {c.address}")


@app.command()
def grant(coordinator: str = COORD, key_file: Path | None = KEY, wallet: str | None = WALLET,
          password: str | None = PasswordOpt, task: str = TASK,
          secret: Path = typer.Option(..., help="The HE secret written by `create`."),
          wait_partners: int = typer.Option(0, help="Wait until this many partners joined."),
          timeout: float = 120.0, start: bool = typer.Option(False, help="Start round 1 afterwards.")):
    """Owner: seal the HE secret to each joined partner's wallet key; optionally start."""
    try:
        keyset = he.load_secret(secret.read_bytes())
    except OSError as exc:
        raise GridMartError(f"cannot read {secret} ({exc.strerror}); pass the file `create` wrote") from None
    c = Coordinator(coordinator, _key(key_file, wallet, password))
    end = time.monotonic() + timeout
    while len(c.task(task)["partners"]) < wait_partners:
        if time.monotonic() > end:
            raise FLError(f"only {len(c.task(task)['partners'])} of {wait_partners} partners joined in {timeout:.0f} s")
        time.sleep(0.2)
    for addr in c.grant_keys(task, keyset):
        typer.echo(f"sealed key for {addr}")
    if start:
        c.start(task)
        typer.echo("round 1 open")


@app.command()
def train(coordinator: str = COORD, key_file: Path | None = KEY, wallet: str | None = WALLET,
          password: str | None = PasswordOpt, task: str = TASK,
          data: Path = typer.Option(..., help="Your SGCC-format CSV (never uploaded)."),
          val_frac: float = 0.25, seed: int = 0,
          stop_after_round: int = typer.Option(0, help="Leave after this round (simulates a dropout); 0 = never."),
          out: Path | None = typer.Option(None, help="Write the result (history, weights) as JSON here.")):
    """Partner: train every round locally, upload encrypted updates, decrypt aggregates."""
    X, y, X_val, y_val = load_partner_data(data, val_frac, seed)
    c = Coordinator(coordinator, _key(key_file, wallet, password))
    res = run_partner(c, task, X, y, X_val, y_val, stop_after_round=stop_after_round or None,
                      log=typer.echo)
    summary = {"address": c.address, "rounds_done": res.rounds_done, "refused": res.refused,
               "epsilon": res.epsilon, "customer_epsilon": res.customer_epsilon, "final": res.history[-1] if res.history else None}
    if out:
        out.write_text(json.dumps({**summary, "history": res.history, "weights": res.weights.tolist()}))
    typer.echo(json.dumps(summary))


@app.command()
def status(coordinator: str = COORD, task: str = TASK):
    """Print the task as the coordinator sees it (JSON)."""
    typer.echo(json.dumps(Coordinator(coordinator).task(task), indent=1))


@app.command()
def plot(coordinator: str = COORD, task: str = TASK, out: Path = typer.Option(..., help="PNG path."),
         metric: str = "auc"):
    """Save the convergence plot (metric per round, federated vs local models)."""
    out.write_bytes(Coordinator(coordinator).plot_png(task, metric))
    typer.echo(str(out))


def _final_weights(c: Coordinator, view: dict, secret: Path) -> np.ndarray:
    if view["status"] not in ("done", "finalized"):
        raise GridMartError(f"task {view['task_id']} is {view['status']}; wait until its last round is aggregated")
    try:
        keyset = he.load_secret(secret.read_bytes())
    except OSError as exc:
        raise GridMartError(f"cannot read {secret} ({exc.strerror}); pass the file `create` wrote") from None
    return keyset.decrypt(c.blob(view["task_id"], view["rounds"][-1]["aggregate_cid"]))


def _market(coordinator: str, key: str):
    """The marketplace the zone is mounted in, signed in with the same wallet."""
    from marketplace.client import MarketClient

    client = MarketClient(coordinator, Account.from_key(key))
    client.login()
    return client


def _chain_task_id(c: Coordinator, task: str) -> int:
    ledger = c.ledger(task)
    if ledger.get("ledger") != "chain":
        raise GridMartError("this coordinator keeps no chain ledger (a stand-alone one); reward pools "
                            "and certified versions need the marketplace's FL zone: pass --coordinator <marketplace URL>")
    return ledger["chain_task_id"]


@app.command()
def fund(coordinator: str = COORD, key_file: Path | None = KEY, wallet: str | None = WALLET,
         password: str | None = PasswordOpt, task: str = TASK,
         points: int = typer.Option(..., min=1, help="Points to escrow in the task's reward pool.")):
    """Owner: escrow points for the partners; paid out pro rata to their shares when you publish."""
    key = _key(key_file, wallet, password)
    c = Coordinator(coordinator, key)
    chain_task = _chain_task_id(c, task)
    out = _market(coordinator, key).fund_task(chain_task, points)
    typer.echo(f"reward pool of task {task} (chain task {chain_task}): {out['reward_pool']} points; "
               f"your balance: {out['balance']}")


@app.command()
def publish(coordinator: str = COORD, key_file: Path | None = KEY, wallet: str | None = WALLET,
            password: str | None = PasswordOpt, task: str = TASK,
            secret: Path = typer.Option(..., help="The HE secret written by `create`."),
            product: int = typer.Option(0, help="Tool product to version (default: the task's)."),
            title: str = typer.Option("", help="Title of the new version (default: the product's)."),
            as_json: bool = typer.Option(False, "--json")):
    """Owner: decrypt the final model, certify it as a new version of the tool product with
    lineage to the task, and finalise the task on chain (the reward pool is paid out)."""
    from fl_coordinator.service import model_blob

    key = _key(key_file, wallet, password)
    c = Coordinator(coordinator, key)
    view = c.task(task)
    if view["status"] == "finalized":
        raise GridMartError(f"task {task} is already published as certificate {view['final_certificate']}")
    weights = _final_weights(c, view, secret)
    chain_task = _chain_task_id(c, task)
    product = product or view["product_id"]
    if not product:
        raise GridMartError("the task names no tool product; pass --product <your tool product id>")
    market = _market(coordinator, key)
    info = market.product(product)
    lineage = {"fl_task": task, "fl_chain_task": chain_task, "rounds": len(view["rounds"]),
               "task_certificate_cid": view["certificate_cid"], "initial_model_cid": view["model_cid"],
               "final_aggregate_cid": view["rounds"][-1]["aggregate_cid"]}
    # a version certified for this task before (an earlier run stopped before finalising) is reused
    done = [v for v in info["versions"] if (v["metadata"].get("lineage") or {}).get("fl_task") == task]
    if done:
        cert = {"certificate_id": done[-1]["id"], "cid": done[-1]["cid"]}
    else:
        latest = info["versions"][-1]["metadata"]
        metadata = {"title": title or latest["title"], "kind": "tool", "sharing_mode": "download",
                    "description": f"Trained by federated learning task {task} over {len(view['rounds'])} rounds "
                                   f"with {len(view['final_shares_bps'])} partners.",
                    "tags": sorted(set(latest.get("tags", [])) | {"federated"}),
                    "licence_terms": latest.get("licence_terms", ""), "lineage": lineage}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.json"
            path.write_bytes(model_blob(view["architecture"], weights))
            cert = market.publish(path, metadata, previous=product)
    final_view = c.finalize(task, cert["certificate_id"])
    out = {"task_id": task, "chain_task_id": chain_task, "product_id": product,
           "certificate_id": cert["certificate_id"], "cid": cert["cid"], "payouts": final_view["payouts"],
           "shares_bps": final_view["final_shares_bps"]}
    typer.echo(json.dumps(out) if as_json else
               f"certificate {out['certificate_id']} (new version of product {product}, CID {out['cid']}) "
               f"finalises task {task}; paid: " + (", ".join(f"{a} {p}" for a, p in out["payouts"].items()) or "nothing")
               + "; the new version goes on the shelf when the operator approves it")


@app.command()
def final(coordinator: str = COORD, task: str = TASK,
          secret: Path = typer.Option(..., help="The HE secret written by `create`."),
          out: Path = typer.Option(..., help="Where to write the decrypted model (JSON).")):
    """Owner: decrypt the last aggregate into a plaintext model, ready to publish as a product version."""
    from fl_coordinator.service import model_blob

    c = Coordinator(coordinator)
    view = c.task(task)
    weights = _final_weights(c, view, secret)
    out.write_bytes(model_blob(view["architecture"], weights))
    typer.echo(json.dumps({"task_id": task, "model": str(out), "encrypted_model_cid": view["rounds"][-1]["aggregate_cid"],
                           "shares_bps": view["final_shares_bps"]}))
