"""Coordinator state: on disk a save rewrites only what changed and a crash between files loses nothing;
the views handed to the web layer are snapshots."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fl_coordinator import he, service as service_mod
from fl_coordinator.errors import Refused
from fl_coordinator.keys import wallet_public_key
from fl_coordinator.ledger import InMemoryLedger
from fl_coordinator.model import FedMLPClassifier
from fl_coordinator.service import MAX_REFUSALS_LOGGED, TaskService
from fl_coordinator.strategy import FedAvg
from ledger_node.config import Settings
from ledger_node.content import open_store
from tests.fl.conftest import Clock

KEYS = he.generate("plain")


def _service(tmp_path, clock) -> TaskService:
    return TaskService(open_store(Settings(home=tmp_path / "c")), InMemoryLedger(), tmp_path / "spool", clock=clock)


def _running_task(svc: TaskService, wallets, *, rounds: int, partners: int = 2):
    model = FedMLPClassifier(hidden=()).init_weights(3)
    owner = wallets[0].address
    t = svc.create_task(owner, name="x", architecture=model.architecture(), initial_weights=model.get_weights(),
                        backend="plain", public_context=KEYS.public().public_bytes, rounds=rounds,
                        min_partners=1, round_seconds=10, training={}, dp=None, seed=0)
    for w in wallets[1:1 + partners]:
        svc.join(t.task_id, w.address, wallet_public_key(w.key))
    svc.put_envelopes(t.task_id, owner, {w.address: b"sealed" for w in wallets[1:1 + partners]})
    svc.start(t.task_id, owner)
    return t, [w.address for w in wallets[1:1 + partners]]


def _play_round(svc: TaskService, task, partners: list[str], number: int) -> None:
    for i, a in enumerate(partners):
        svc.submit(task.task_id, number, a, KEYS.encrypt(np.full(4, float(number + i))), 10 * (i + 1))


def test_a_save_rewrites_only_the_rounds_it_touched(tmp_path, wallets):
    clock = Clock()
    svc = _service(tmp_path, clock)
    t, partners = _running_task(svc, wallets, rounds=3)
    base = tmp_path / "spool" / t.task_id
    _play_round(svc, t, partners, 1)
    first = (base / "rounds" / "1.json").read_bytes()
    small = (base / "task.json").stat().st_size
    _play_round(svc, t, partners, 2)
    svc.submit(t.task_id, 3, partners[0], KEYS.encrypt(np.zeros(4)), 5)
    with pytest.raises(Refused):
        svc.submit(t.task_id, 3, wallets[5].address, KEYS.encrypt(np.zeros(4)), 5)  # a refusal, logged
    assert (base / "rounds" / "1.json").read_bytes() == first  # later rounds never rewrite round 1
    doc = json.loads((base / "task.json").read_text())
    assert "rounds" not in doc and doc["rounds_opened"] == 3
    assert (base / "task.json").stat().st_size <= small + 8  # does not grow with rounds

    # metrics of an earlier round land in that round's file and survive a restart
    svc.report_metrics(t.task_id, 1, partners[1], {"auc": 0.75})
    again = _service(tmp_path, clock).task(t.task_id)
    assert again.round(1).metrics == {partners[1]: {"auc": 0.75}}
    assert again.view() == t.view()


def _crash_at_task_json(monkeypatch, after: str, state: str) -> None:
    """Make the coordinator die writing task.json right after it wrote round file `after` with `state`."""
    real, last = service_mod._write_atomic, {"name": None, "state": None}

    def write(path, data):
        if path.name == "task.json" and (last["name"], last["state"]) == (after, state):
            raise OSError("simulated crash")
        last["name"] = path.name
        last["state"] = json.loads(data).get("state") if path.parent.name == "rounds" else None
        real(path, data)

    monkeypatch.setattr(service_mod, "_write_atomic", write)


def test_a_crash_after_a_round_file_is_completed_on_restart(tmp_path, wallets, monkeypatch):
    clock = Clock()
    svc = _service(tmp_path, clock)
    t, partners = _running_task(svc, wallets, rounds=2)

    # round 1 aggregated and round 2's file written, task.json not: the restart opens round 2
    with monkeypatch.context() as m:
        _crash_at_task_json(m, after="2.json", state="open")
        with pytest.raises(OSError, match="simulated crash"):
            _play_round(svc, t, partners, 1)
    assert json.loads((tmp_path / "spool" / t.task_id / "task.json").read_text())["rounds_opened"] == 1
    svc = _service(tmp_path, clock)
    t = svc.task(t.task_id)
    assert t.status == "running" and t.round(1).state == "aggregated" and t.current.number == 2
    assert t.current.state == "open"
    assert not (tmp_path / "spool" / t.task_id / "1").exists()  # round 1's spooled updates are removed

    # the last round aggregated, task.json not yet "done": the restart finishes the task
    with monkeypatch.context() as m:
        _crash_at_task_json(m, after="2.json", state="aggregated")
        with pytest.raises(OSError, match="simulated crash"):
            _play_round(svc, t, partners, 2)
    t = _service(tmp_path, clock).task(t.task_id)
    assert t.status == "done" and len(t.rounds) == 2
    assert t.final_shares_bps == {partners[0]: 3333, partners[1]: 6667}


def test_a_crash_after_a_failed_round_file_fails_the_task_on_restart(tmp_path, wallets, monkeypatch):
    clock = Clock()
    svc = _service(tmp_path, clock)
    t, _ = _running_task(svc, wallets, rounds=2)
    clock.t += 11  # deadline passed with no update: the round and the task fail
    with monkeypatch.context() as m:
        _crash_at_task_json(m, after="1.json", state="failed")
        with pytest.raises(OSError, match="simulated crash"):
            svc.tick()
    t = _service(tmp_path, clock).task(t.task_id)
    assert t.status == "failed"
    assert t.status_reason == t.round(1).close_reason == "deadline passed with 0 updates, fewer than min_partners=1"


def test_task_files_from_before_round_files_still_load(tmp_path, wallets):
    clock = Clock()
    svc = _service(tmp_path, clock)
    t, partners = _running_task(svc, wallets, rounds=3)
    _play_round(svc, t, partners, 1)
    base = tmp_path / "spool" / t.task_id
    doc = json.loads((base / "task.json").read_text())  # rewrite it as the older coordinator did
    doc["rounds"] = [json.loads((base / "rounds" / f"{n}.json").read_text()) for n in (1, 2)]
    for n in (1, 2):
        (base / "rounds" / f"{n}.json").unlink()
    del doc["rounds_opened"], doc["rounds"][0]["refused_more"]
    (base / "task.json").write_text(json.dumps(doc))

    again = _service(tmp_path, clock)
    assert again.task(t.task_id).view() == t.view()
    assert "rounds" not in json.loads((base / "task.json").read_text())  # migrated to round files
    _play_round(again, again.task(t.task_id), partners, 2)
    assert _service(tmp_path, clock).task(t.task_id).current.number == 3


def test_refusals_beyond_the_log_limit_are_counted_not_kept(tmp_path, wallets):
    clock = Clock()
    svc = _service(tmp_path, clock)
    t, _ = _running_task(svc, wallets, rounds=1)
    outsider = wallets[5].address
    for _ in range(MAX_REFUSALS_LOGGED + 3):
        with pytest.raises(Refused, match="not a partner"):
            svc.submit(t.task_id, 1, outsider, KEYS.encrypt(np.zeros(4)), 5)
    rnd = _service(tmp_path, clock).task(t.task_id).round(1)
    assert len(rnd.refused) == MAX_REFUSALS_LOGGED and rnd.refused_more == 3
    assert rnd.state == "open" and rnd.view()["refused_more"] == 3


def test_views_are_snapshots_that_later_changes_do_not_touch(tmp_path, wallets):
    """The web layer serializes a view after the state lock is released, while partners report."""
    svc = _service(tmp_path, Clock())
    t, partners = _running_task(svc, wallets, rounds=2)
    _play_round(svc, t, partners, 1)
    task_view, round_view = t.view(), t.round(1).view()
    svc.report_metrics(t.task_id, 1, partners[0], {"auc": 0.5})
    with pytest.raises(Refused):
        svc.submit(t.task_id, 1, partners[0], KEYS.encrypt(np.zeros(4)), 5)  # late: logged on round 1
    assert round_view["metrics"] == {} and round_view["refused"] == []
    assert task_view["rounds"][0]["metrics"] == {} and task_view["rounds"][0]["refused"] == []
    assert t.round(1).view()["metrics"] == {partners[0]: {"auc": 0.5}} and len(t.round(1).view()["refused"]) == 1


def _fail_once(monkeypatch, name: str, state: str) -> None:
    """The next write of round file `name` with `state` fails (a full disk, say); the process goes on."""
    real, armed = service_mod._write_atomic, {"on": True}

    def write(path, data):
        if armed["on"] and path.name == name and json.loads(data).get("state") == state:
            armed["on"] = False
            raise OSError("No space left on device")
        real(path, data)

    monkeypatch.setattr(service_mod, "_write_atomic", write)


class _DownLedger(InMemoryLedger):
    """The chain is unreachable: rounds are not recorded (so nothing else rewrites their files)."""

    def record_round(self, *args):
        raise ConnectionError("chain unreachable")


def test_a_round_whose_write_failed_is_written_by_the_next_save(tmp_path, wallets, monkeypatch):
    clock = Clock()
    svc = TaskService(open_store(Settings(home=tmp_path / "c")), _DownLedger(), tmp_path / "spool", clock=clock)
    t, partners = _running_task(svc, wallets, rounds=3)
    _fail_once(monkeypatch, "1.json", "aggregated")
    with pytest.raises(OSError, match="No space"):
        _play_round(svc, t, partners, 1)  # round 1 aggregated in memory, its file still says aggregating
    _play_round(svc, t, partners, 2)  # these saves touch round 2 (and 3) only, and retry round 1
    again = _service(tmp_path, clock).task(t.task_id)
    assert [r.state for r in again.rounds] == ["aggregated", "aggregated", "open"]
    assert again.round(1).aggregate_cid == t.round(1).aggregate_cid and not again.round(1).recorded


def test_an_aggregation_failure_cut_by_a_crash_keeps_its_reason(tmp_path, wallets, monkeypatch):
    clock = Clock()
    svc = _service(tmp_path, clock)
    t, partners = _running_task(svc, wallets, rounds=2)

    def broken(*args):
        raise Refused("ciphertexts do not match the context")

    monkeypatch.setattr(FedAvg, "aggregate", broken)  # the task's strategy (its terms name none: FedAvg)
    with monkeypatch.context() as m:
        _crash_at_task_json(m, after="1.json", state="failed")
        with pytest.raises(OSError, match="simulated crash"):
            _play_round(svc, t, partners, 1)
    t = _service(tmp_path, clock).task(t.task_id)
    assert t.status == "failed" and t.status_reason == "aggregation failed: ciphertexts do not match the context"


class _FlakyStore:
    """The real content store, except that the next `fail` puts are refused (a daemon outage)."""

    def __init__(self, real, fail: int):
        self.real, self.fail = real, fail

    def put_bytes(self, data, **kw):
        if self.fail:
            self.fail -= 1
            raise ConnectionError("IPFS daemon unreachable")
        return self.real.put_bytes(data, **kw)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_an_aggregate_the_store_refused_is_stored_on_a_later_tick(tmp_path, wallets):
    clock = Clock()
    svc = _service(tmp_path, clock)
    t, partners = _running_task(svc, wallets, rounds=2)
    svc.store = _FlakyStore(svc.store, fail=1)
    _play_round(svc, t, partners, 1)
    assert t.round(1).state == "aggregating" and t.current.number == 1
    svc.tick()  # too soon: nothing is retried yet
    assert t.round(1).state == "aggregating"
    clock.t += service_mod.STORE_RETRY_SECONDS + 0.1
    svc.tick()
    assert t.round(1).state == "aggregated" and t.current.number == 2
    np.testing.assert_allclose(KEYS.decrypt(svc.store.get_bytes(t.round(1).aggregate_cid)), (1 * 10 + 2 * 20) / 30)
