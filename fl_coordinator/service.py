"""Task and round rules of the coordinator (no HTTP here; server.py is a thin layer).

Lifecycle: create (owner) -> join (partners) -> keys (owner seals the HE
secret to each partner) -> start -> rounds. A round closes as soon as every
partner has uploaded, or at its deadline if at least `min_partners` did; with
fewer at the deadline the task fails (nothing to aggregate safely). Refused
updates are logged on the round and never stop it. The coordinator holds the
public HE context only: load_public refuses anything carrying a secret key.

State survives a restart: every change is written (atomically) after the accepted
update it depends on is on disk: each round the change touched to
<spool>/<task>/rounds/<n>.json, then the task's own fields to <spool>/<task>/task.json,
whose `rounds_opened` commits new rounds. A save so costs the same in round 1 and round
10,000. On restart, a round caught mid-aggregation is aggregated again on the first tick
(deterministic: same CID), and a step a crash cut between the round's file and task.json
(the next round not yet opened, the task not yet marked done or failed) is completed.
"""
from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from eth_utils import is_address, to_checksum_address

from fl_coordinator import certificate, he
from fl_coordinator.errors import FLError, Refused
from fl_coordinator.keys import address_of_public_key
from fl_coordinator.ledger import ContributionLedger
from fl_coordinator.model import from_architecture
from fl_coordinator.shares import round_shares, task_shares
from fl_coordinator import strategy

log = logging.getLogger(__name__)
MAX_SAMPLES = 10 ** 9
#: accepted updates up to this size stay parsed in memory until their round is aggregated
KEEP_PARSED_MAX_BYTES = 4 << 20
#: the latest aggregates are served from memory: every partner fetches the new one at once
RECENT_AGGREGATES = 4
#: refusals logged per round with caller and reason; more are only counted, so a client retrying
#: a bad upload in a loop cannot grow the round's record (and each save) without bound
MAX_REFUSALS_LOGGED = 100
#: a round whose aggregate the content store refused is aggregated and stored again after this
STORE_RETRY_SECONDS = 2.0
#: the largest model a task may train (weights): the coordinator holds it, and every update's
#: ciphertexts, in memory (1 M float64 weights: 8 MiB plain, ~250 CKKS ciphertexts per update)
MAX_WEIGHTS = 1_000_000
#: an update's size bound: a CKKS ciphertext (4,096 weights) is ~235 KB, ~57 bytes a weight,
#: Paillier ~14, plain 8; the bound leaves room for any backend's framing
UPDATE_BASE_BYTES, UPDATE_BYTES_PER_WEIGHT = 1 << 20, 128


@dataclass
class Round:
    number: int
    opened_at: float
    deadline: float
    state: str = "open"  # open | aggregating | aggregated | failed
    updates: dict[str, tuple[Path, int]] = field(default_factory=dict)
    refused: list[dict] = field(default_factory=list)
    refused_more: int = 0  # refusals beyond MAX_REFUSALS_LOGGED, counted only
    closed_at: float | None = None
    close_reason: str = ""
    aggregate_cid: str | None = None
    partners: list[str] = field(default_factory=list)
    sample_counts: list[int] = field(default_factory=list)
    shares_bps: list[int] = field(default_factory=list)
    aggregate_seconds: float | None = None
    aggregated_at: float | None = None
    metrics: dict[str, dict] = field(default_factory=dict)
    recorded: bool = False  # on the contribution ledger
    ledger_error: str | None = None
    #: accepted updates as check() parsed them, so aggregating does not read and parse the spool
    #: again (memory only: after a restart the spool files are aggregated)
    parsed: dict[str, he.EncryptedVector] = field(default_factory=dict, repr=False)

    def view(self) -> dict:
        """A snapshot: the web layer serializes it after the state lock is released, while other
        threads may add updates, refusals and metrics (C-level copies cannot be interrupted)."""
        return {"round": self.number, "state": self.state, "opened_at": self.opened_at,
                "deadline": self.deadline, "closed_at": self.closed_at,
                "close_reason": self.close_reason, "submitted": sorted(self.updates),
                "refused": list(self.refused), "refused_more": self.refused_more, "aggregate_cid": self.aggregate_cid,
                "partners": self.partners, "sample_counts": self.sample_counts,
                "shares_bps": self.shares_bps, "aggregate_seconds": self.aggregate_seconds,
                "aggregated_at": self.aggregated_at, "metrics": dict(self.metrics), "recorded": self.recorded,
                "ledger_error": self.ledger_error}


@dataclass
class Task:
    task_id: str
    owner: str
    name: str
    architecture: dict
    n_params: int
    backend: str
    keyset: he.PublicKeyset
    model_cid: str
    context_cid: str
    rounds_total: int
    min_partners: int
    round_seconds: float
    training: dict
    dp: dict | None
    seed: int
    created_at: float
    product_id: int = 0  # the tool product whose next version this trains (0: chosen at finalisation)
    certificate_cid: str = ""  # the task certificate (fl_coordinator.certificate); sha-256 = task_id
    status: str = "enrolling"  # enrolling | running | done (trained) | finalized (paid out) | failed
    status_reason: str = ""
    partners: dict[str, str] = field(default_factory=dict)  # address -> wallet public key
    envelopes: dict[str, bytes] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    final_shares_bps: dict[str, int] = field(default_factory=dict)
    final_certificate: int = 0
    payouts: dict[str, int] = field(default_factory=dict)

    @property
    def current(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None

    def round(self, number: int) -> Round | None:
        """Round `number` (rounds are numbered 1, 2, ... in order), None if not opened."""
        return self.rounds[number - 1] if 1 <= number <= len(self.rounds) else None

    def awaits_record(self) -> bool:
        """Whether an aggregated round awaits its ledger record. Rounds are recorded in order,
        so the latest aggregated round tells (tick() asks this of every task, 20 times a second)."""
        last = next((r for r in reversed(self.rounds) if r.state == "aggregated"), None)
        return last is not None and not last.recorded

    def view(self) -> dict:
        return {"task_id": self.task_id, "owner": self.owner, "name": self.name,
                "architecture": self.architecture, "n_params": self.n_params,
                "backend": self.backend, "context_fingerprint": self.keyset.fingerprint,
                "model_cid": self.model_cid, "context_cid": self.context_cid,
                "certificate_cid": self.certificate_cid, "rounds_total": self.rounds_total,
                "min_partners": self.min_partners,
                "round_seconds": self.round_seconds, "training": self.training, "dp": self.dp,
                "seed": self.seed, "product_id": self.product_id, "status": self.status, "status_reason": self.status_reason,
                "partners": [{"address": a, "public_key": k, "has_key": a in self.envelopes}
                             for a, k in list(self.partners.items())],
                "current_round": self.current.number if self.current else 0,
                "rounds": [r.view() for r in self.rounds],
                "final_shares_bps": self.final_shares_bps, "final_certificate": self.final_certificate,
                "payouts": self.payouts}


def model_blob(architecture: dict, weights: np.ndarray) -> bytes:
    """The stored form of a plaintext model: architecture + float64 weights (JSON, exact)."""
    return json.dumps({"architecture": architecture,
                       "weights": [float(x) for x in np.asarray(weights, dtype=np.float64)]}).encode()


def parse_model_blob(data: bytes) -> tuple[dict, np.ndarray]:
    doc = json.loads(data)
    return doc["architecture"], np.asarray(doc["weights"], dtype=np.float64)


class TaskService:
    """All coordinator state and rules; thread-safe; time comes from `clock`."""

    def __init__(self, store, ledger: ContributionLedger, spool: Path, *, clock=time.time,
                 he_workers: int = 1, max_weights: int = MAX_WEIGHTS,
                 may_open: Callable[[str], None] | None = None):
        """`may_open(owner)` raises Refused if `owner` may not open a task (the marketplace asks
        the chain); it runs before anything of the request is built."""
        self.store = store
        self.max_weights = max_weights
        self.may_open = may_open
        self.ledger = ledger
        self.spool = Path(spool)
        self.clock = clock
        self.he_workers = he_workers
        self.tasks: dict[str, Task] = {}
        self._lock = threading.RLock()
        self._ledger_lock = threading.Lock()  # ledger writes in order, outside the state lock
        #: rounds to aggregate again from a given time: caught mid-aggregation by a restart (at once)
        #: or whose aggregate the content store refused (after STORE_RETRY_SECONDS)
        self._resume: list[tuple[Task, Round, float]] = []
        self._recent: OrderedDict[str, bytes] = OrderedDict()  # CID -> the latest aggregates
        self._unsaved: dict[str, set[int]] = {}  # task -> rounds whose write failed: the next save retries
        self._watchers: set[Callable[[], None]] = set()
        self._load()

    # -- change notification ---------------------------------------------------------
    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from whichever thread changed it, holding the state lock: keep it
        short) after every state change; returns the function that stops it. Long polls wait
        on this instead of asking again and again."""
        self._watchers.add(callback)
        return lambda: self._watchers.discard(callback)

    # -- persistence ---------------------------------------------------------------
    def _save(self, task: Task, *rounds: Round) -> None:
        """Write the `rounds` a change touched, then task.json (see the module docstring; callers
        hold the state lock, or own the service alone as _load does). Pass every round the change
        touched: others are not rewritten, except rounds whose last write failed."""
        base = self.spool / task.task_id
        pending = self._unsaved.setdefault(task.task_id, set())
        pending.update(r.number for r in rounds)
        for number in sorted(pending):
            rnd = task.round(number)
            doc = {f.name: getattr(rnd, f.name) for f in fields(Round) if f.name not in ("updates", "parsed")}
            doc["updates"] = {a: [str(p), n] for a, (p, n) in rnd.updates.items()}
            _write_atomic(base / "rounds" / f"{number}.json", json.dumps(doc).encode())
            pending.discard(number)
        doc = {f.name: getattr(task, f.name) for f in fields(Task) if f.name not in ("keyset", "envelopes", "rounds")}
        doc["rounds_opened"] = len(task.rounds)
        _write_atomic(base / "task.json", json.dumps(doc).encode())
        for callback in list(self._watchers):  # every state change is saved: this is the one place to tell
            try:
                callback()
            except Exception:  # noqa: BLE001 - a watcher's failure is its own
                log.exception("FL state watcher failed")

    def _save_envelopes(self, task: Task, envelopes: dict[str, bytes]) -> None:
        """Each sealed key in its own file, written once: a CKKS envelope is megabytes, and
        task.json is rewritten on every upload (callers hold the state lock)."""
        for addr, env in envelopes.items():
            _write_atomic(self.spool / task.task_id / "keys" / f"{addr}.env", env)

    def _load(self) -> None:
        for path in sorted(self.spool.glob("*/task.json")):
            try:
                doc = json.loads(path.read_text())
                inline = "rounds" in doc  # written before rounds had files of their own
                docs = doc.pop("rounds") if inline else [
                    json.loads((path.parent / "rounds" / f"{n}.json").read_text())
                    for n in range(1, doc.pop("rounds_opened") + 1)]
                rounds = [Round(**{**r, "updates": {a: (Path(p), n) for a, (p, n) in r["updates"].items()}})
                          for r in docs]
                envelopes = {p.stem: p.read_bytes() for p in sorted((path.parent / "keys").glob("*.env"))}
                keyset = he.load_public(doc["backend"], self.store.get_bytes(doc["context_cid"]),
                                        workers=self.he_workers)
                task = Task(**doc, keyset=keyset, envelopes=envelopes, rounds=rounds)
                if inline:
                    self._save(task, *task.rounds)
                self._complete_interrupted_step(task)
                for spooled in path.parent.iterdir():  # updates of aggregated rounds a crash left behind
                    rnd = task.round(int(spooled.name)) if spooled.name.isdigit() else None
                    if rnd is not None and rnd.state == "aggregated":
                        shutil.rmtree(spooled, ignore_errors=True)
            except Exception as exc:  # one unreadable task must not keep the others (or the app) down
                log.error("cannot resume FL task from %s (%s: %s); it is left on disk", path,
                          type(exc).__name__, exc)
                continue
            self.tasks[task.task_id] = task
            if task.current is not None and task.current.state == "aggregating":
                self._resume.append((task, task.current, 0.0))
        if self.tasks:
            log.info("resumed %d FL tasks from %s", len(self.tasks), self.spool)

    def _complete_interrupted_step(self, task: Task) -> None:
        """A crash between a round's file and task.json leaves a running task whose current
        round is aggregated (the next round not opened) or failed; finish that step now."""
        rnd = task.current
        if task.status != "running" or rnd is None or rnd.state not in ("aggregated", "failed"):
            return
        if rnd.state == "aggregated":
            self._advance(task, rnd)
        else:
            task.status, task.status_reason = "failed", rnd.close_reason
        self._save(task, task.current)

    # -- lookups ---------------------------------------------------------------
    def task(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id.lower()]
        except KeyError:
            raise Refused(f"no FL task {task_id}; list tasks with GET /fl/tasks", 404) from None

    def _owner_only(self, task: Task, caller: str) -> None:
        if caller.lower() != task.owner.lower():
            raise Refused(f"only the task owner {task.owner} may do this", 403)

    def check_partner(self, task_id: str, caller: str) -> str:
        """`caller` as listed among the partners of task `task_id`, or Refused (404/403)."""
        return self._partner_only(self.task(task_id), caller)

    def _partner_only(self, task: Task, caller: str) -> str:
        for a in task.partners:
            if a.lower() == caller.lower():
                return a
        raise Refused(f"{caller} is not a partner of task {task.task_id}; join it first", 403)

    def blob(self, task_id: str, cid: str) -> bytes:
        task = self.task(task_id)
        known = ({task.model_cid, task.context_cid, task.certificate_cid}
                 | {r.aggregate_cid for r in task.rounds}) - {"", None}
        if cid not in known:
            raise Refused(f"{cid} is not an artifact of task {task_id}", 404)
        recent = self._recent.get(cid)  # the same bytes: the CID is their hash
        return recent if recent is not None else self.store.get_bytes(cid)

    # -- lifecycle ---------------------------------------------------------------
    def check_owner(self, owner: str) -> None:
        """Refuse an owner who may not open tasks (before its request is even parsed)."""
        if self.may_open is not None:
            self.may_open(owner)

    def check_size(self, architecture: dict, n_weights: int) -> None:
        """Refuse a model over max_weights, or whose weights do not fit it, before building it."""
        n = declared_params(architecture)
        if n > self.max_weights:
            raise Refused(f"the model has {n} weights; this coordinator trains at most {self.max_weights}", 413)
        if n_weights != n:
            raise Refused(f"bad model: weight vector has {n_weights} values, the model needs {n}")

    def max_update_bytes(self, task_id: str) -> int:
        """The largest update body task `task_id` accepts (read before its signature is checked)."""
        return UPDATE_BASE_BYTES + UPDATE_BYTES_PER_WEIGHT * self.task(task_id).n_params

    def create_task(self, owner: str, *, name: str, architecture: dict, initial_weights,
                    backend: str, public_context: bytes, rounds: int, min_partners: int,
                    round_seconds: float, training: dict, dp: dict | None, seed: int,
                    product_id: int = 0) -> Task:
        self.check_owner(owner)
        self.check_size(architecture, len(initial_weights))
        try:
            model = from_architecture(architecture)
            model.set_weights(np.asarray(initial_weights, dtype=np.float64))
        except (ValueError, KeyError, TypeError) as exc:
            raise Refused(f"bad model: {exc}") from None
        if rounds < 1 or min_partners < 1 or round_seconds <= 0:
            raise Refused("rounds and min_partners must be >= 1 and round_seconds > 0")
        try:
            strategy.from_terms(training)  # an unknown strategy or parameter: refused before anything is stored
        except FLError as exc:
            raise Refused(str(exc)) from None
        keyset = he.load_public(backend, public_context, workers=self.he_workers)
        initial = model_blob(model.architecture(), model.get_weights())
        model_cid = self.store.put_bytes(initial).cid
        context_cid = self.store.put_bytes(public_context).cid
        created = self.clock()
        terms = dict(owner=owner, product_id=int(product_id), name=name, architecture=model.architecture(),
                     n_params=model.n_params, backend=backend, rounds=rounds, min_partners=min_partners,
                     round_seconds=float(round_seconds), training=dict(training), dp=dict(dp) if dp else None,
                     seed=int(seed), created_at=created, nonce=secrets.token_hex(16))
        cert = certificate.issue(artifacts={"model": (model_cid, initial), "context": (context_cid, public_context)},
                                 **terms)
        certificate_cid = self.store.put_bytes(cert).cid
        task_id = certificate.task_id_of(cert)
        task = Task(task_id, owner, name, model.architecture(), model.n_params, backend, keyset,
                    model_cid, context_cid, rounds, min_partners, float(round_seconds),
                    dict(training), dict(dp) if dp else None, int(seed), created, int(product_id),
                    certificate_cid=certificate_cid)
        self.ledger.open_task(task_id, owner, task.product_id, certificate_cid)
        with self._lock:
            self.tasks[task_id] = task
            self._save(task)
        return task

    def join(self, task_id: str, caller: str, public_key: str) -> Task:
        """A partner is listed once, under its checksum address, however often (and in whatever
        letter case, concurrently or not) it joins: each partner counts once toward min_partners
        and once per round."""
        task = self.task(task_id)
        if not is_address(caller):
            raise Refused(f"{caller!r} is not a wallet address")
        caller = to_checksum_address(caller)
        if address_of_public_key(public_key).lower() != caller.lower():
            raise Refused("public key does not belong to the signing wallet", 403)
        with self._lock:
            if task.status != "enrolling":
                raise Refused(f"task {task_id} is {task.status}; joins are closed", 409)
            if _listed(task, caller):
                return task
        self.ledger.join(task_id, caller)  # the chain may refuse a non-member: then nothing changes
        with self._lock:
            if task.status != "enrolling":
                raise Refused(f"task {task_id} is {task.status}; joins are closed", 409)
            if not _listed(task, caller):  # another join of the same wallet may have got here first
                task.partners[caller] = public_key.removeprefix("0x")
                self._save(task)
        return task

    def put_envelopes(self, task_id: str, caller: str, envelopes: dict[str, bytes]) -> Task:
        task = self.task(task_id)
        self._owner_only(task, caller)
        with self._lock:
            fixed = {self._partner_only(task, a): env for a, env in envelopes.items()}
            self._save_envelopes(task, fixed)
            task.envelopes.update(fixed)
        return task

    def envelope(self, task_id: str, caller: str) -> bytes:
        task = self.task(task_id)
        addr = self._partner_only(task, caller)
        try:
            return task.envelopes[addr]
        except KeyError:
            raise Refused("no key envelope for you yet; wait for the task owner to grant keys", 404) from None

    def start(self, task_id: str, caller: str) -> Task:
        task = self.task(task_id)
        self._owner_only(task, caller)
        with self._lock:
            if task.status != "enrolling":
                raise Refused(f"task {task_id} is already {task.status}", 409)
            if len(task.partners) < task.min_partners:
                raise Refused(f"task has {len(task.partners)} partners, needs {task.min_partners} to start", 409)
            missing = [a for a in task.partners if a not in task.envelopes]
            if missing:
                raise Refused(f"partners without a key envelope: {', '.join(missing)}; grant keys first", 409)
            task.status = "running"
            self._open_round(task, 1)
            self._save(task, task.current)
        return task

    def _open_round(self, task: Task, number: int) -> None:
        now = self.clock()
        task.rounds.append(Round(number, now, now + task.round_seconds))
        (self.spool / task.task_id / str(number)).mkdir(parents=True, exist_ok=True)

    # -- updates -------------------------------------------------------------------
    def submit(self, task_id: str, round_no: int, caller: str, update: bytes, n_samples: int) -> Round:
        task = self.task(task_id)
        try:
            with self._lock:
                addr = self._partner_only(task, caller)
                rnd = self._open_round_for(task, round_no)
                if addr in rnd.updates:
                    raise Refused(f"{addr} already submitted an update for round {round_no}; "
                                  "one update per partner per round", 409)
                if not (isinstance(n_samples, int) and 0 < n_samples <= MAX_SAMPLES):
                    raise Refused(f"n_samples must be an integer in 1..{MAX_SAMPLES}")
            parsed = task.keyset.check(update, task.n_params)
            with self._lock:
                rnd = self._open_round_for(task, round_no)  # may have closed while checking
                if addr in rnd.updates:
                    raise Refused(f"{addr} already submitted an update for round {round_no}", 409)
                path = self.spool / task.task_id / str(round_no) / f"{addr}.bin"
                path.write_bytes(update)
                rnd.updates[addr] = (path, n_samples)
                if len(update) <= KEEP_PARSED_MAX_BYTES:
                    rnd.parsed[addr] = parsed
                complete = len(rnd.updates) == len(task.partners)
                if complete:
                    self._begin_close(task, rnd, "all partners submitted")
                self._save(task, rnd)
        except Refused as exc:
            self._note_refusal(task, round_no, caller, exc)
            raise
        if complete:
            self._aggregate(task, rnd)
        return rnd

    def _open_round_for(self, task: Task, round_no: int) -> Round:
        rnd = task.current
        if task.status == "failed" or rnd is None:
            raise Refused(f"task {task.task_id} is {task.status}; no round is open "
                          f"{('(' + task.status_reason + ')') if task.status_reason else ''}", 409)
        if round_no < rnd.number or (round_no == rnd.number and rnd.state != "open"):
            raise Refused(f"round {round_no} is closed; late update refused (current round "
                          f"{rnd.number})", 409)
        if round_no > rnd.number:
            raise Refused(f"round {round_no} is not open yet (current round {rnd.number})", 409)
        if self.clock() > rnd.deadline:
            raise Refused(f"round {round_no} deadline passed; late update refused", 409)
        return rnd

    def _note_refusal(self, task: Task, round_no: int, caller: str, exc: Refused) -> None:
        with self._lock:
            rnd = task.round(round_no)
            if rnd is None:
                return
            if len(rnd.refused) < MAX_REFUSALS_LOGGED:
                rnd.refused.append({"address": caller, "reason": str(exc), "at": self.clock()})
            else:
                rnd.refused_more += 1
            self._save(task, rnd)

    def _begin_close(self, task: Task, rnd: Round, reason: str) -> None:
        rnd.state, rnd.closed_at, rnd.close_reason = "aggregating", self.clock(), reason

    def tick(self) -> None:
        """Close rounds whose deadline passed; retry ledger records that failed (called periodically)."""
        with self._lock:
            now = self.clock()
            due = [(task, rnd) for task, rnd, at in self._resume if at <= now]
            self._resume = [entry for entry in self._resume if entry[2] > now]
            unrecorded = [t for t in self.tasks.values() if t.awaits_record()]
            for task in self.tasks.values():
                rnd = task.current
                if task.status == "running" and rnd.state == "open" and now > rnd.deadline:
                    if len(rnd.updates) >= task.min_partners:
                        self._begin_close(task, rnd, f"deadline passed with {len(rnd.updates)} of "
                                                     f"{len(task.partners)} updates")
                        due.append((task, rnd))
                    else:
                        rnd.state, rnd.closed_at = "failed", now
                        rnd.parsed.clear()
                        rnd.close_reason = (f"deadline passed with {len(rnd.updates)} updates, "
                                            f"fewer than min_partners={task.min_partners}")
                        task.status, task.status_reason = "failed", rnd.close_reason
                    self._save(task, rnd)
        for task, rnd in due:
            self._aggregate(task, rnd)
        for task in unrecorded:
            self._record_rounds(task)

    def _aggregate(self, task: Task, rnd: Round) -> None:
        """Eq. (3): sum p_i H(g_i) over accepted updates; store, record shares, open the next round."""
        partners = sorted(rnd.updates, key=str.lower)
        counts = [rnd.updates[a][1] for a in partners]
        rule = strategy.from_terms(task.training)
        weights = rule.weights(counts)  # one set of weights: the aggregate and the shares
        t0 = time.perf_counter()
        try:
            aggregate = rule.aggregate(task.keyset, [rnd.parsed.get(a, rnd.updates[a][0]) for a in partners], weights)
        except FLError as exc:
            with self._lock:
                rnd.state, task.status = "failed", "failed"
                rnd.close_reason = task.status_reason = f"aggregation failed: {exc}"
                rnd.parsed.clear()
                self._save(task, rnd)
            return
        seconds = time.perf_counter() - t0
        try:
            cid = self.store.put_bytes(aggregate).cid
        except Exception as exc:  # the content store (an IPFS daemon) is down: a later tick retries
            log.warning("storing the aggregate of task %s round %s failed (%s: %s); retrying",
                        task.task_id, rnd.number, type(exc).__name__, exc)
            with self._lock:
                self._resume.append((task, rnd, self.clock() + STORE_RETRY_SECONDS))
            return
        shares = round_shares(partners, weights, counts)
        with self._lock:
            self._recent[cid] = aggregate
            while len(self._recent) > RECENT_AGGREGATES:
                self._recent.popitem(last=False)
            rnd.aggregate_cid, rnd.partners, rnd.sample_counts = cid, partners, counts
            rnd.shares_bps, rnd.aggregate_seconds, rnd.state = shares, seconds, "aggregated"
            rnd.aggregated_at = self.clock()
            rnd.parsed.clear()
            self._advance(task, rnd)
            self._save(task, rnd, task.current)
            shutil.rmtree(self.spool / task.task_id / str(rnd.number), ignore_errors=True)
        self._record_rounds(task)

    def _advance(self, task: Task, rnd: Round) -> None:
        """Round `rnd` is aggregated: the task is done, or its next round opens."""
        if rnd.number == task.rounds_total:
            task.final_shares_bps = task_shares([dict(zip(r.partners, r.shares_bps)) for r in task.rounds])
            task.status = "done"
        else:
            self._open_round(task, rnd.number + 1)

    def _record_rounds(self, task: Task) -> bool:
        """Record aggregated rounds on the ledger, in order; a failure is kept on the round and
        retried by tick(), so a chain outage delays the record but never loses it."""
        with self._ledger_lock:
            for rnd in task.rounds:
                if rnd.state != "aggregated" or rnd.recorded:
                    continue
                try:
                    self.ledger.record_round(task.task_id, rnd.number, rnd.aggregate_cid, rnd.partners,
                                             rnd.sample_counts, rnd.shares_bps)
                except Exception as exc:  # the chain client's errors must not lose the round
                    log.warning("ledger record of task %s round %s failed: %s", task.task_id, rnd.number, exc)
                    rnd.ledger_error = f"{type(exc).__name__}: {exc}"
                    return False
                with self._lock:
                    rnd.recorded, rnd.ledger_error = True, None
                    self._save(task, rnd)
        return True

    def finalize(self, task_id: str, caller: str, certificate_id: int) -> Task:
        """Owner: the final model is certified as `certificate_id` (a new version of the task's tool
        product); close the task on the ledger, which pays the reward pool pro rata."""
        task = self.task(task_id)
        self._owner_only(task, caller)
        if task.status == "finalized":
            raise Refused(f"task {task_id} is already finalised with certificate {task.final_certificate}", 409)
        if task.status != "done":
            raise Refused(f"task {task_id} is {task.status}; finalise it after its last round is aggregated", 409)
        if not isinstance(certificate_id, int) or certificate_id <= 0:
            raise Refused("certificate_id must be the id of the final model's certificate")
        if not self._record_rounds(task):
            raise Refused(f"rounds are not yet recorded on the ledger ({task.rounds[-1].ledger_error}); "
                          "retry shortly", 503)
        with self._ledger_lock:
            payouts = self.ledger.finalize(task.task_id, certificate_id)
            with self._lock:
                task.status, task.final_certificate, task.payouts = "finalized", certificate_id, dict(payouts)
                self._save(task)
        return task

    # -- metrics -----------------------------------------------------------------
    def report_metrics(self, task_id: str, round_no: int, caller: str, metrics: dict) -> None:
        task = self.task(task_id)
        with self._lock:
            addr = self._partner_only(task, caller)
            rnd = task.round(round_no)
            if rnd is None or rnd.state != "aggregated":
                raise Refused(f"round {round_no} has no aggregate yet; report metrics after it", 409)
            rnd.metrics[addr] = _finite(metrics)
            self._save(task, rnd)


def _finite(value):
    """`value` with NaN and infinities as None: a metric a partner could not compute (an AUC on
    a one-class validation set) must not make the task unreadable as JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _listed(task: Task, address: str) -> bool:
    return any(a.lower() == address.lower() for a in task.partners)


def declared_params(architecture: dict) -> int:
    """How many weights `architecture` (an mlp: n_features, hidden sizes) has, computed from the
    numbers alone (building the model would allocate them)."""
    try:
        if architecture.get("kind") != "mlp":
            raise ValueError(f"unknown model kind {architecture.get('kind')!r}; this zone trains 'mlp'")
        sizes = [architecture["n_features"], *architecture.get("hidden", ()), 1]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise ValueError("n_features and every hidden size must be integers >= 1")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise Refused(f"bad model: {exc}") from None
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (a crash leaves the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
