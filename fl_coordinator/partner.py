"""Client side of the protocol: signed HTTP calls, the task owner's steps, and a partner's rounds.

A partner only ever sends H(w_global + delta) (delta clipped and noised
first when the task asks for DP) plus its sample count; it decrypts the
aggregate itself with the HE secret it received sealed to its wallet.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx
import numpy as np
from eth_account import Account
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from fl_coordinator import certificate, he
from fl_coordinator.auth import sign_request, target
from fl_coordinator.dp import CUSTOMER_DELTA, DPConfig, customer_epsilon, epsilon, privatize
from fl_coordinator.errors import FLError, Refused
from fl_coordinator.keys import seal, unseal, wallet_public_key
from fl_coordinator.model import FedMLPClassifier, from_architecture
from fl_coordinator.strategy import TRAINING_KEYS, FedAvg, from_terms
from fl_coordinator.service import model_blob, parse_model_blob

#: the envelopes one POST .../keys carries at most (the coordinator takes JSON bodies up to 1 MiB)
ENVELOPE_BATCH_BYTES = 768 * 1024
CERTIFIED_REQUEST = ("name", "backend", "rounds", "min_partners", "round_seconds", "training", "dp", "seed",
                     "product_id")
LONG_POLL_SECONDS = 20.0  # each long poll; the coordinator holds at most fl_coordinator.server.MAX_WAIT_SECONDS


class Coordinator:
    """Signed calls to one coordinator on behalf of one wallet."""

    def __init__(self, base_url: str, private_key: str | None = None, *, timeout: float = 120.0):
        """Without a private key only the public reads (task, round, blob, plot) work."""
        self.base = httpx.URL(base_url.rstrip("/") + "/")
        self.key = private_key
        self.address = Account.from_key(private_key).address if private_key else None
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: dict | None = None, *, signed: bool = True, raw: bool = False,
              data: bytes | None = None):
        """`body` goes as JSON, `data` as raw bytes (application/octet-stream)."""
        url = self.base.join("fl/" + path.lstrip("/"))
        content = data if data is not None else json.dumps(body).encode() if body is not None else b""
        if signed and not self.key:
            raise FLError("this call must be signed; pass the wallet key file")
        headers = sign_request(self.key, method, target(url.path, url.query.decode()), content) if signed else {}
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        elif body is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = self.http.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise FLError(f"cannot reach the FL coordinator at {self.base} ({exc}); is it running?") from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise Refused(f"coordinator refused {method} {url.path}: {detail}", resp.status_code)
        return resp.content if raw else resp.json()

    # -- reads ---------------------------------------------------------------
    def task(self, task_id: str) -> dict:
        return self._call("GET", f"tasks/{task_id}", signed=False)

    def round(self, task_id: str, round_no: int, *, wait: float = 0, seen: str = "") -> dict | None:
        """Round `round_no` (None if not opened yet). With `wait`, a long poll: the coordinator
        answers when the round's state is no longer `seen` ('' = not opened), or after `wait` s."""
        query = f"?wait={wait:.3f}&seen={seen}" if wait > 0 else ""
        try:
            return self._call("GET", f"tasks/{task_id}/rounds/{round_no}{query}", signed=False)
        except Refused as exc:
            if exc.status == 404:
                return None
            raise

    def blob(self, task_id: str, cid: str) -> bytes:
        return self._call("GET", f"tasks/{task_id}/blobs/{cid}", signed=False, raw=True)

    def plot_png(self, task_id: str, metric: str = "auc") -> bytes:
        return self._call("GET", f"tasks/{task_id}/plot.png?metric={metric}", signed=False, raw=True)

    # -- task owner ------------------------------------------------------------
    def create_task(self, *, name: str, model: FedMLPClassifier, keyset: he.SecretKeyset, rounds: int,
                    min_partners: int, round_seconds: float, strategy: FedAvg | None = None,
                    dp: DPConfig | None = None, seed: int = 0, product_id: int = 0) -> dict:
        """Open a task (on chain too when the coordinator has one) training a new version of your
        tool product `product_id` (0: name the product when you finalise); `strategy` (default
        FedAvg with the model's own training parameters) is certified with it."""
        rule = strategy or FedAvg(**{k: getattr(model, k) for k in TRAINING_KEYS})
        body = {"name": name, "architecture": model.architecture(),
                "initial_weights": model.get_weights().tolist(), "backend": keyset.name,
                "public_context": base64.b64encode(keyset.public_bytes).decode(),
                "rounds": rounds, "min_partners": min_partners, "round_seconds": round_seconds,
                "training": rule.terms(),
                "dp": None if dp is None else {"clip": dp.clip, "noise_multiplier": dp.noise_multiplier,
                                               "delta": dp.delta},
                "seed": seed, "product_id": product_id}
        task = self._call("POST", "tasks", body)
        # the coordinator wrote the certificate: check it pins what we sent before anyone joins
        terms = certificate.verify(self.blob(task["task_id"], task["certificate_cid"]), task["task_id"])
        certificate.check_artifact(terms, "model", model_blob(model.architecture(), model.get_weights()))
        certificate.check_artifact(terms, "context", keyset.public_bytes)
        certificate.check_terms(terms, {k: body[k] for k in CERTIFIED_REQUEST}, owner=self.address)
        return task

    def grant_keys(self, task_id: str, keyset: he.SecretKeyset) -> list[str]:
        """Seal the HE secret to every joined partner that has no envelope yet; return them."""
        task = self.task(task_id)
        secret = he.dump_secret(keyset)
        todo = {p["address"]: base64.b64encode(seal(p["public_key"], secret)).decode()
                for p in task["partners"] if not p["has_key"]}
        batch: dict[str, str] = {}
        for address, envelope in todo.items():  # a CKKS secret is ~0.3 MB: a few per request
            if batch and sum(map(len, batch.values())) + len(envelope) > ENVELOPE_BATCH_BYTES:
                self._call("POST", f"tasks/{task_id}/keys", {"envelopes": batch})
                batch = {}
            batch[address] = envelope
        if batch:
            self._call("POST", f"tasks/{task_id}/keys", {"envelopes": batch})
        return sorted(todo)

    def start(self, task_id: str) -> dict:
        return self._call("POST", f"tasks/{task_id}/start")

    def finalize(self, task_id: str, certificate_id: int) -> dict:
        """Close the trained task with the certificate of its final model (pays the reward pool)."""
        return self._call("POST", f"tasks/{task_id}/finalize", {"certificate_id": certificate_id})

    def ledger(self, task_id: str) -> dict:
        return self._call("GET", f"tasks/{task_id}/ledger", signed=False)

    # -- partner ------------------------------------------------------------------
    def join(self, task_id: str) -> dict:
        return self._call("POST", f"tasks/{task_id}/join", {"public_key": wallet_public_key(self.key)})

    def keyset(self, task_id: str) -> he.SecretKeyset:
        env = base64.b64decode(self._call("POST", f"tasks/{task_id}/key")["envelope"])
        return he.load_secret(unseal(self.key, env))

    def upload(self, task_id: str, round_no: int, update: bytes, n_samples: int) -> dict:
        """The encrypted update as raw bytes (a CKKS update is ~230 KiB: base64 in JSON would add a
        third and cost more CPU than the aggregation), the sample count in the signed query."""
        return self._call("POST", f"tasks/{task_id}/rounds/{round_no}/update?n_samples={int(n_samples)}",
                          data=update)

    def report(self, task_id: str, round_no: int, metrics: dict) -> None:
        self._call("POST", f"tasks/{task_id}/rounds/{round_no}/metrics", {"metrics": metrics})


def evaluate(model: FedMLPClassifier, X: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy, recall of the theft class and ROC AUC."""
    proba = model.predict_proba(X)[:, 1]
    pred = (proba >= 0.5).astype(int)
    auc = roc_auc_score(y, proba) if len(np.unique(y)) == 2 else float("nan")
    return {"accuracy": float(accuracy_score(y, pred)),
            "recall": float(recall_score(y, pred, zero_division=0)), "auc": float(auc)}


@dataclass
class PartnerResult:
    weights: np.ndarray
    rounds_done: list[int] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    epsilon: float | None = None
    #: customer-level epsilon of its DP-SGD training (at dp.CUSTOMER_DELTA), if the task trains so
    customer_epsilon: float | None = None
    refused: list[str] = field(default_factory=list)


def wait_for(fn: Callable[[], object], timeout: float, poll: float, what: str):
    end = time.monotonic() + timeout
    while True:
        out = fn()
        if out:
            return out
        if time.monotonic() > end:
            raise FLError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def run_partner(coord: Coordinator, task_id: str, X: np.ndarray, y: np.ndarray,
                X_val: np.ndarray, y_val: np.ndarray, *, stop_after_round: int | None = None,
                poll: float = 0.05, log: Callable[[str], None] = lambda s: None) -> PartnerResult:
    """Take part in every round of a started task (until `stop_after_round`, to simulate a dropout)."""
    task = coord.task(task_id)
    patience = 3 * task["round_seconds"] + 60
    if not task["certificate_cid"]:
        raise FLError(f"task {task_id} was created without a task certificate; ask the owner to create it again")
    # train what the owner certified (sha-256 = task id = spec hash on chain), not what we are told
    terms = certificate.verify(coord.blob(task_id, task["certificate_cid"]), task_id)
    keyset = wait_for(lambda: _try_key(coord, task_id), patience, poll, "the key envelope")
    try:
        certificate.check_artifact(terms, "context", keyset.public_bytes)
    except certificate.CertificateMismatch:
        raise FLError("the key received does not match the task's certified HE context; "
                      "ask the owner to re-grant") from None
    initial = coord.blob(task_id, terms["artifacts"]["model"]["cid"])
    certificate.check_artifact(terms, "model", initial)
    arch, w0 = parse_model_blob(initial)
    if X.ndim != 2 or X.shape[1] != arch["n_features"] or X_val.shape[1:] != X.shape[1:]:
        raise FLError(f"your data have {X.shape[1] if X.ndim == 2 else 'no'} features a customer, the task's model "
                      f"takes {arch['n_features']}: prepare them as the task says (e.g. the analytics theft features "
                      "of an SGCC CSV) before joining its rounds")
    rule = from_terms(terms["training"])
    params = rule.training  # the local-only baseline and the evaluation: the model, not the strategy
    dp = DPConfig(**terms["dp"]) if terms["dp"] else None
    dp_rng = np.random.default_rng([terms["seed"], int(coord.address, 16) % 2 ** 32])
    local = from_architecture(arch, w0, **params)
    log(f"ready: key received for {keyset.name} context {keyset.fingerprint[:12]}, waiting for round 1")
    result = PartnerResult(weights=w0)
    global_w = w0
    private, trained = bool(local.dp_clip), 0  # DP-SGD: every training run on X counts
    for r in range(1, terms["rounds"] + 1):
        rnd = await_round(coord, task_id, r, patience, closed=False)
        if rnd["task_status"] == "failed":
            raise FLError(f"task failed: {coord.task(task_id)['status_reason']}")
        if stop_after_round is not None and r > stop_after_round:
            log(f"round {r}: leaving the task (dropout requested)")
            break
        seed = terms["seed"] * 100_003 + r
        model = from_architecture(arch, global_w, random_state=seed, **rule.configure_round(r)).partial_fit(X, y)
        trained += 1
        delta = model.get_weights() - global_w
        if dp:
            delta = privatize(delta, dp, dp_rng)
        try:
            coord.upload(task_id, r, keyset.encrypt(global_w + delta), len(y))
            result.rounds_done.append(r)
        except Refused as exc:
            if exc.status != 409:
                raise
            result.refused.append(str(exc))
            log(f"round {r}: update refused: {exc}")
        if not private:  # under DP-SGD no model but the private one is trained, nor reported
            local.random_state = seed
            local.partial_fit(X, y)
        done = await_round(coord, task_id, r, patience, closed=True)
        if done["state"] != "aggregated":
            raise FLError(f"round {r} failed: {done['close_reason']}")
        global_w = keyset.decrypt(coord.blob(task_id, done["aggregate_cid"]))
        fed = from_architecture(arch, global_w, **params)
        metrics = {"federated": evaluate(fed, X_val, y_val), "n_val": int(len(y_val)),
                   **({} if private else {"local": evaluate(local, X_val, y_val)})}
        coord.report(task_id, r, metrics)
        result.history.append({"round": r, **metrics})
        log(f"round {r}: federated AUC {metrics['federated']['auc']:.3f}"
            + ("" if private else f", local AUC {metrics['local']['auc']:.3f}") + f" ({done['close_reason']})")
    result.weights = global_w
    if dp:
        result.epsilon = epsilon(dp.noise_multiplier, len(result.rounds_done), dp.delta)
    if private:
        result.customer_epsilon = customer_epsilon(len(y), local.batch_size, local.epochs, trained, local.dp_noise,
                                                   CUSTOMER_DELTA)
        log(f"customer-level DP: epsilon {result.customer_epsilon:.2f} at delta {CUSTOMER_DELTA:g} "
            f"for each of {len(y)} customers")
    return result


def _try_key(coord: Coordinator, task_id: str):
    try:
        return coord.keyset(task_id)
    except Refused as exc:
        if exc.status == 404:
            return None
        raise


def await_round(coord: Coordinator, task_id: str, round_no: int, timeout: float, *, closed: bool) -> dict:
    """Round `round_no` once it is open (`closed` False) or closed (True), or the task failed, by
    long polls: the answer comes the moment the state changes, and waiting costs no requests."""
    end = time.monotonic() + timeout
    seen = ""
    while True:
        rnd = coord.round(task_id, round_no, wait=min(LONG_POLL_SECONDS, max(end - time.monotonic(), 0.001)),
                          seen=seen)
        if rnd is not None and (not closed or rnd["state"] in ("aggregated", "failed")
                                or rnd["task_status"] == "failed"):
            return rnd
        if rnd is None:  # not opened: the coordinator answers at once if it never will be
            task = coord.task(task_id)
            if task["status"] not in ("enrolling", "running"):
                reason = f" ({task['status_reason']})" if task["status_reason"] else ""
                raise FLError(f"round {round_no} will not open: the task is {task['status']}{reason}")
        if time.monotonic() > end:
            raise FLError(f"timed out after {timeout:.0f} s waiting for round {round_no} "
                          f"{'aggregate' if closed else 'to open'}")
        seen = rnd["state"] if rnd else ""
