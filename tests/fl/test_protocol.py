"""Coordinator protocol over real HTTP: bad input is refused with a reason and the round goes on."""
from __future__ import annotations

import base64
import json
import socket
import concurrent.futures
import time

import httpx
import numpy as np
import pytest
from eth_account import Account

from fl_coordinator import certificate, he
from fl_coordinator.auth import sign_request
from fl_coordinator.errors import FLError, Refused
from fl_coordinator.ledger import InMemoryLedger
from fl_coordinator.model import FedMLPClassifier
from fl_coordinator.partner import Coordinator, await_round, run_partner
from fl_coordinator.service import model_blob, parse_model_blob

N_FEATURES = 6


@pytest.fixture(scope="module")
def ckks_keys():
    return he.generate("ckks")


def _setup(url, wallets, keyset, *, partners=3, min_partners=2, round_seconds=30.0, rounds=2):
    owner = Coordinator(url, wallets[0].key.hex())
    model = FedMLPClassifier(hidden=(3,)).init_weights(N_FEATURES)
    task = owner.create_task(name="t", model=model, keyset=keyset, rounds=rounds,
                             min_partners=min_partners, round_seconds=round_seconds)
    clients = [Coordinator(url, w.key.hex()) for w in wallets[1:1 + partners]]
    for c in clients:
        c.join(task["task_id"])
    owner.grant_keys(task["task_id"], keyset)
    owner.start(task["task_id"])
    return owner, task, clients, model


def test_bad_updates_refused_round_goes_on(live_service, wallets, ckks_keys):
    url, svc = live_service
    owner, task, (a, b, c), model = _setup(url, wallets, ckks_keys)
    tid, n = task["task_id"], model.n_params
    keyset = a.keyset(tid)
    assert keyset.fingerprint == task["context_fingerprint"]

    outsider = Coordinator(url, wallets[5].key.hex())
    with pytest.raises(Refused, match="not a partner") as e:
        outsider.upload(tid, 1, keyset.encrypt(np.zeros(n)), 10)
    assert e.value.status == 403
    with pytest.raises(Refused, match=f"has {n + 1} values but the model has {n}") as e:
        a.upload(tid, 1, keyset.encrypt(np.zeros(n + 1)), 10)
    assert e.value.status == 422
    with pytest.raises(Refused, match="context") as e:
        b.upload(tid, 1, he.generate("ckks").encrypt(np.zeros(n)), 10)
    assert e.value.status == 422
    with pytest.raises(Refused, match="backend 'plain'"):
        b.upload(tid, 1, he.generate("plain").encrypt(np.zeros(n)), 10)
    with pytest.raises(Refused, match="n_samples"):
        b.upload(tid, 1, keyset.encrypt(np.zeros(n)), 0)
    with pytest.raises(Refused, match="not open yet"):
        b.upload(tid, 2, keyset.encrypt(np.zeros(n)), 10)

    xs = {a: np.full(n, 1.0), b: np.full(n, 2.0), c: np.full(n, 4.0)}
    counts = {a: 100, b: 300, c: 600}
    # a accepted update, then the very same signed request replayed
    path = f"/fl/tasks/{tid}/rounds/1/update"
    body = keyset.encrypt(xs[a])
    headers = {**sign_request(a.key, "POST", path + "?n_samples=100", body), "Content-Type": "application/octet-stream"}
    as_json = httpx.post(url + path + "?n_samples=100", content=body, headers={**headers, "Content-Type": "application/json"})
    assert as_json.status_code == 415 and "application/octet-stream" in as_json.json()["detail"]
    # the sample count is signed with the path: changing it breaks the signature
    forged = httpx.post(url + path + "?n_samples=100000", content=body, headers=headers)
    assert forged.status_code == 401 and "does not match" in forged.json()["detail"]
    assert httpx.post(url + path + "?n_samples=100", content=body, headers=headers).status_code == 200
    replay = httpx.post(url + path + "?n_samples=100", content=body, headers=headers)
    assert replay.status_code == 409 and "replayed" in replay.json()["detail"]
    with pytest.raises(Refused, match="already submitted"):
        a.upload(tid, 1, keyset.encrypt(xs[a]), 100)

    b.upload(tid, 1, keyset.encrypt(xs[b]), counts[b])
    c.upload(tid, 1, keyset.encrypt(xs[c]), counts[c])
    rnd = a.round(tid, 1)
    assert rnd["state"] == "aggregated" and rnd["close_reason"] == "all partners submitted"
    assert svc.task(tid).rounds[0].parsed == {}  # the updates kept parsed for aggregating are let go
    reasons = " | ".join(r["reason"] for r in rnd["refused"])
    # the round logs the refusals of signed requests; the outsider was refused from its headers,
    # before its body (and so its signature) was read, so it is not logged under a claimed name
    for needle in ("values but the model", "context", "already submitted"):
        assert needle in reasons
    assert "not a partner" not in reasons
    agg = keyset.decrypt(a.blob(tid, rnd["aggregate_cid"]))
    assert np.abs(agg - (100 * 1 + 300 * 2 + 600 * 4) / 1000).max() < 1e-7
    assert dict(zip(rnd["partners"], rnd["sample_counts"])) == {k.address: v for k, v in counts.items()}
    assert dict(zip(rnd["partners"], rnd["shares_bps"])) == {a.address: 1000, b.address: 3000, c.address: 6000}
    with pytest.raises(Refused, match="late update refused") as e:
        b.upload(tid, 1, keyset.encrypt(xs[b]), counts[b])
    assert e.value.status == 409
    assert a.round(tid, 2)["state"] == "open"
    # the coordinator holds only the public context: it cannot decrypt
    coord_keys = svc.task(tid).keyset
    assert not hasattr(coord_keys, "decrypt") and not coord_keys.context.is_private()
    arch, w0 = parse_model_blob(a.blob(tid, task["model_cid"]))
    assert np.array_equal(w0, model.get_weights()) and arch["hidden"] == [3]


def test_the_task_certificate_pins_the_initial_model_and_rules(live_service, wallets, ckks_keys):
    url, svc = live_service
    owner, task, (a, b), model = _setup(url, wallets, ckks_keys, partners=2, rounds=3)
    tid = task["task_id"]
    doc = a.blob(tid, task["certificate_cid"])
    terms = certificate.verify(doc, tid)  # its sha-256 is the task id, i.e. the spec hash on chain
    assert terms["artifacts"]["model"]["cid"] == task["model_cid"]
    assert terms["artifacts"]["context"]["cid"] == task["context_cid"]
    certificate.check_artifact(terms, "model", model_blob(model.architecture(), model.get_weights()))
    certificate.check_artifact(terms, "context", ckks_keys.public_bytes)
    assert (terms["owner"], terms["rounds"], terms["min_partners"]) == (owner.address, 3, 2)
    assert svc.ledger.events[0] == ("open_task", {"task_id": tid, "owner": owner.address, "product_id": 0,
                                                  "certificate_cid": task["certificate_cid"]})
    with pytest.raises(certificate.CertificateMismatch, match="does not hash to the task id"):
        certificate.verify(doc + b" ", tid)
    with pytest.raises(certificate.CertificateMismatch, match="the model does not match"):
        certificate.check_artifact(terms, "model", model_blob(model.architecture(), model.get_weights() + 1e-9))

    class Lying(Coordinator):  # a coordinator serving other initial weights than the certified ones
        def blob(self, task_id, cid):
            data = super().blob(task_id, cid)
            if cid != task["model_cid"]:
                return data
            arch, _ = parse_model_blob(data)
            return model_blob(arch, np.zeros(model.n_params))

    X, y = np.zeros((4, N_FEATURES)), np.array([0, 1, 0, 1])
    with pytest.raises(certificate.CertificateMismatch, match="the model does not match"):
        run_partner(Lying(url, wallets[1].key.hex()), tid, X, y, X, y)


def test_a_partner_refuses_a_key_for_another_context_than_the_certified_one(live_service, wallets, ckks_keys):
    url, _ = live_service
    owner = Coordinator(url, wallets[0].key.hex())
    task = owner.create_task(name="t", model=FedMLPClassifier(hidden=(3,)).init_weights(N_FEATURES),
                             keyset=ckks_keys, rounds=1, min_partners=1, round_seconds=30)
    partner = Coordinator(url, wallets[1].key.hex())
    partner.join(task["task_id"])
    owner.grant_keys(task["task_id"], he.generate("ckks"))  # sealed the wrong secret
    X, y = np.zeros((4, N_FEATURES)), np.array([0, 1, 0, 1])
    with pytest.raises(FLError, match="does not match the task's certified HE context"):
        run_partner(partner, task["task_id"], X, y, X, y)


def test_the_owner_refuses_a_certificate_that_pins_other_terms(live_service, wallets, ckks_keys, monkeypatch):
    url, _ = live_service
    issue = certificate.issue
    monkeypatch.setattr(certificate, "issue", lambda **kw: issue(**{**kw, "rounds": kw["rounds"] + 1}))
    with pytest.raises(certificate.CertificateMismatch, match="rounds differ"):
        _setup(url, wallets, ckks_keys)


def test_long_poll_answers_when_the_round_changes(live_service, wallets, ckks_keys):
    url, _ = live_service
    owner, task, (a, b), model = _setup(url, wallets, ckks_keys, partners=2, rounds=2, round_seconds=60)
    tid = task["task_id"]
    keyset = a.keyset(tid)
    # nothing changes: held for the wait, then the unchanged view (and a 404 for an unopened round)
    assert a.round(tid, 1, wait=0.3, seen="open")["state"] == "open"
    assert a.round(tid, 2, wait=0.3) is None
    # a state the caller has not seen yet: answered at once
    assert a.round(tid, 1, wait=25, seen="")["state"] == "open"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        closing = pool.submit(a.round, tid, 1, wait=25, seen="open")
        opening = pool.submit(b.round, tid, 2, wait=25)
        time.sleep(0.3)
        assert not closing.done() and not opening.done()  # held: the round has not moved
        a.upload(tid, 1, keyset.encrypt(np.ones(model.n_params)), 10)
        b.upload(tid, 1, keyset.encrypt(np.ones(model.n_params)), 10)
        # woken by the aggregation, long before their 25 s
        assert closing.result(timeout=15)["state"] in ("aggregating", "aggregated")
        assert opening.result(timeout=15)["state"] == "open"
    with pytest.raises(Refused) as e:
        a.round(tid, 1, wait=31)
    assert e.value.status == 422  # longer than the coordinator holds a request


def test_a_partner_waiting_for_a_round_of_a_failed_task_is_told_at_once(live_service, wallets, ckks_keys):
    url, _ = live_service
    owner, task, (a, b), model = _setup(url, wallets, ckks_keys, partners=2, min_partners=2, round_seconds=1.0)
    tid = task["task_id"]
    a.upload(tid, 1, a.keyset(tid).encrypt(np.ones(model.n_params)), 10)
    closed = await_round(b, tid, 1, 15, closed=True)  # woken by the deadline, with one update of two
    assert closed["state"] == "failed" and closed["task_status"] == "failed"
    with pytest.raises(FLError, match="round 2 will not open: the task is failed"):
        await_round(b, tid, 2, 600, closed=False)


def test_deadline_closes_round_with_the_updates_in_and_refuses_late(live_service, wallets, ckks_keys):
    url, svc = live_service
    owner, task, (a, b), model = _setup(url, wallets, ckks_keys, partners=2, min_partners=1,
                                        round_seconds=1.0, rounds=1)
    tid = task["task_id"]
    keyset = a.keyset(tid)
    a.upload(tid, 1, keyset.encrypt(np.ones(model.n_params)), 50)
    time.sleep(1.4)
    with pytest.raises(Refused, match="late update refused") as e:
        b.upload(tid, 1, keyset.encrypt(np.ones(model.n_params)), 50)
    assert e.value.status == 409
    rnd = a.round(tid, 1)
    assert rnd["state"] == "aggregated" and "deadline passed with 1 of 2" in rnd["close_reason"]
    assert rnd["partners"] == [a.address] and rnd["shares_bps"] == [10_000]
    assert a.task(tid)["status"] == "done"
    assert [e["event"] for e in owner.ledger(tid)["events"]] == ["open_task", "join", "join", "record_round"]
    with pytest.raises(Refused, match="only the task owner"):
        a.finalize(tid, 7)
    assert owner.finalize(tid, 7)["status"] == "finalized"
    assert owner.ledger(tid)["events"][-1] == {"event": "finalize", "task_id": tid, "certificate_id": 7}
    with pytest.raises(Refused, match="already finalised") as e:
        owner.finalize(tid, 7)
    assert e.value.status == 409


def test_too_few_updates_at_deadline_fails_the_task(service, wallets, ckks_keys):
    pub = ckks_keys.public()
    model = FedMLPClassifier(hidden=()).init_weights(3)
    owner = wallets[0].address
    t = service.create_task(owner, name="x", architecture=model.architecture(),
                            initial_weights=model.get_weights(), backend="ckks",
                            public_context=pub.public_bytes, rounds=3, min_partners=2,
                            round_seconds=10, training={}, dp=None, seed=0)
    from fl_coordinator.keys import wallet_public_key
    for w in wallets[1:3]:
        service.join(t.task_id, w.address, wallet_public_key(w.key))
    with pytest.raises(Refused, match="without a key envelope"):
        service.start(t.task_id, owner)
    with pytest.raises(Refused, match="only the task owner"):
        service.put_envelopes(t.task_id, wallets[1].address, {wallets[1].address: b"x"})
    service.put_envelopes(t.task_id, owner, {w.address: b"sealed" for w in wallets[1:3]})
    service.start(t.task_id, owner)
    service.submit(t.task_id, 1, wallets[1].address, ckks_keys.encrypt(np.zeros(4)), 10)
    service.clock.t += 11
    service.tick()
    assert t.status == "failed" and "fewer than min_partners=2" in t.status_reason
    with pytest.raises(Refused, match="failed"):
        service.submit(t.task_id, 1, wallets[2].address, ckks_keys.encrypt(np.zeros(4)), 10)


def test_secret_context_refused_at_creation(live_service, wallets, ckks_keys):
    url, _ = live_service
    owner = Coordinator(url, wallets[0].key.hex())
    body = {"name": "x", "architecture": {"kind": "mlp", "n_features": 2, "hidden": []},
            "initial_weights": [0.0, 0.0, 0.0], "backend": "ckks",
            "public_context": base64.b64encode(ckks_keys.secret_bytes).decode(),
            "rounds": 1, "min_partners": 1, "round_seconds": 5}
    with pytest.raises(Refused, match="secret key") as e:
        owner._call("POST", "tasks", body)
    assert e.value.status == 422
    body["public_context"] = base64.b64encode(ckks_keys.public_bytes).decode()
    body["initial_weights"] = [0.0]
    with pytest.raises(Refused, match="weight vector has 1 values"):
        owner._call("POST", "tasks", body)


class _ChainLikeLedger(InMemoryLedger):
    """Refuses one non-member's join and is down for the first round record, as a chain can be.
    (The real FederatedRegistry path is tested in tests/market/test_fl_zone.py.)"""

    def __init__(self, outsider: str):
        super().__init__()
        self.outsider, self.down = outsider, True

    def join(self, task_id, partner):
        if partner == self.outsider:
            raise Refused(f"{partner} is not an active member", 403)
        super().join(task_id, partner)

    def record_round(self, *args):
        if self.down:
            raise ConnectionError("chain unreachable")
        super().record_round(*args)


def test_ledger_refusal_changes_nothing_and_failed_records_are_retried(tmp_path, wallets, ckks_keys):
    from fl_coordinator.keys import wallet_public_key
    from fl_coordinator.service import TaskService
    from ledger_node.config import Settings
    from ledger_node.content import open_store
    from tests.fl.conftest import Clock

    ledger = _ChainLikeLedger(outsider=wallets[5].address)
    svc = TaskService(open_store(Settings(home=tmp_path / "c")), ledger, tmp_path / "spool", clock=Clock())
    model = FedMLPClassifier(hidden=()).init_weights(3)
    owner = wallets[0].address
    t = svc.create_task(owner, name="x", architecture=model.architecture(), initial_weights=model.get_weights(),
                        backend="ckks", public_context=ckks_keys.public().public_bytes, rounds=1,
                        min_partners=1, round_seconds=10, training={}, dp=None, seed=0)
    with pytest.raises(Refused, match="not an active member"):
        svc.join(t.task_id, wallets[5].address, wallet_public_key(wallets[5].key))
    assert t.partners == {}
    svc.join(t.task_id, wallets[1].address, wallet_public_key(wallets[1].key))
    svc.put_envelopes(t.task_id, owner, {wallets[1].address: b"sealed"})
    svc.start(t.task_id, owner)
    svc.submit(t.task_id, 1, wallets[1].address, ckks_keys.encrypt(np.zeros(4)), 10)
    rnd = t.rounds[0]
    assert t.status == "done" and not rnd.recorded and "chain unreachable" in rnd.ledger_error
    with pytest.raises(Refused, match="not yet recorded") as e:
        svc.finalize(t.task_id, owner, 3)
    assert e.value.status == 503 and t.status == "done"
    ledger.down = False
    svc.tick()
    assert rnd.recorded and rnd.ledger_error is None
    assert [e["event"] for e in ledger.view(t.task_id)["events"]] == ["open_task", "join", "record_round"]
    assert svc.finalize(t.task_id, owner, 3).status == "finalized"


def test_a_restarted_coordinator_loses_nothing_and_finishes_the_round(tmp_path, wallets, ckks_keys):
    from fl_coordinator.keys import wallet_public_key
    from fl_coordinator.service import TaskService
    from ledger_node.config import Settings
    from ledger_node.content import open_store
    from tests.fl.conftest import Clock

    store, clock = open_store(Settings(home=tmp_path / "c")), Clock()
    svc = TaskService(store, InMemoryLedger(), tmp_path / "spool", clock=clock)
    model = FedMLPClassifier(hidden=()).init_weights(3)
    owner, a, b = (w.address for w in wallets[:3])
    t = svc.create_task(owner, name="x", architecture=model.architecture(), initial_weights=model.get_weights(),
                        backend="ckks", public_context=ckks_keys.public().public_bytes, rounds=2,
                        min_partners=2, round_seconds=10, training={}, dp=None, seed=0)
    for w in wallets[1:3]:
        svc.join(t.task_id, w.address, wallet_public_key(w.key))
    svc.put_envelopes(t.task_id, owner, {a: b"sealed-a", b: b"sealed-b"})
    svc.start(t.task_id, owner)
    svc.submit(t.task_id, 1, a, ckks_keys.encrypt(np.full(4, 1.0)), 10)

    # the process dies here; a new one on the same spool has every task, key envelope and update
    again = TaskService(store, InMemoryLedger(), tmp_path / "spool", clock=clock)
    t2 = again.task(t.task_id)
    assert t2.view() == t.view() and again.envelope(t.task_id, b) == b"sealed-b"
    assert b"sealed" not in (tmp_path / "spool" / t.task_id / "task.json").read_bytes()  # rewritten per upload: keys apart
    with pytest.raises(Refused, match="already submitted"):
        again.submit(t.task_id, 1, a, ckks_keys.encrypt(np.full(4, 1.0)), 10)
    again.submit(t.task_id, 1, b, ckks_keys.encrypt(np.full(4, 3.0)), 30)
    assert t2.rounds[0].state == "aggregated" and t2.current.number == 2
    np.testing.assert_allclose(ckks_keys.decrypt(store.get_bytes(t2.rounds[0].aggregate_cid)), 2.5, atol=1e-6)

    # caught mid-aggregation (state written, aggregate not): the next process aggregates it again
    again.submit(t.task_id, 2, a, ckks_keys.encrypt(np.full(4, 1.0)), 10)
    with again._lock:
        again._begin_close(t2, t2.current, "all partners submitted")
        again._save(t2, t2.current)
    (tmp_path / "spool" / "0xdamaged").mkdir()
    (tmp_path / "spool" / "0xdamaged" / "task.json").write_text("{")  # skipped with an error in the log
    third = TaskService(store, InMemoryLedger(), tmp_path / "spool", clock=clock)
    assert list(third.tasks) == [t.task_id]
    assert third.task(t.task_id).current.state == "aggregating"
    third.tick()
    t3 = third.task(t.task_id)
    assert t3.status == "done" and t3.rounds[1].partners == [a] and t3.rounds[1].recorded


class _SlowJoins(InMemoryLedger):
    """The chain's addPartner takes a while: concurrent joins overlap inside it."""

    def join(self, task_id, partner):
        time.sleep(0.2)
        super().join(task_id, partner)


def test_a_partner_is_listed_once_per_task_and_round(tmp_path, wallets):
    """The same wallet joining twice at once (checksum and lower-case address) is one partner:
    it cannot fill min_partners alone, and it is counted once in its round."""
    from fl_coordinator.keys import wallet_public_key
    from fl_coordinator.service import TaskService
    from ledger_node.config import Settings
    from ledger_node.content import open_store

    keys = he.generate("plain")
    svc = TaskService(open_store(Settings(home=tmp_path / "c")), _SlowJoins(), tmp_path / "spool")
    owner, w = wallets[0], wallets[1]
    model = FedMLPClassifier(hidden=()).init_weights(3)
    t = svc.create_task(owner.address, name="x", architecture=model.architecture(), initial_weights=model.get_weights(),
                        backend="plain", public_context=keys.public().public_bytes, rounds=1, min_partners=2,
                        round_seconds=30, training={}, dp=None, seed=0)
    key = wallet_public_key(w.key)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda a: svc.join(t.task_id, a, key), [w.address, w.address.lower()] * 2))
    assert list(t.partners) == [w.address]
    svc.put_envelopes(t.task_id, owner.address, {w.address: b"sealed"})
    with pytest.raises(Refused, match="has 1 partners, needs 2"):
        svc.start(t.task_id, owner.address)
    with pytest.raises(Refused, match="not a wallet address"):
        svc.join(t.task_id, "0xnot-an-address", key)
    # with a second partner the round runs; the first is counted once however it writes its address
    v = wallets[2]
    svc.join(t.task_id, v.address, wallet_public_key(v.key))
    svc.put_envelopes(t.task_id, owner.address, {v.address: b"sealed"})
    svc.start(t.task_id, owner.address)
    svc.submit(t.task_id, 1, w.address.lower(), keys.encrypt(np.ones(model.n_params)), 10)
    with pytest.raises(Refused, match="already submitted"):
        svc.submit(t.task_id, 1, w.address, keys.encrypt(np.ones(model.n_params)), 10)
    svc.submit(t.task_id, 1, v.address, keys.encrypt(np.ones(model.n_params)), 10)
    assert sorted(t.rounds[0].partners) == sorted([w.address, v.address])


def test_task_size_capped_before_the_model_is_built(live_service, wallets):
    """An oversized model is a 413 at once (its weights are never allocated); a body over the
    coordinator's bound is refused before it is read whole."""
    url, svc = live_service
    body = {"name": "big", "architecture": {"kind": "mlp", "n_features": 10 ** 7, "hidden": [10 ** 7]},
            "initial_weights": [], "backend": "plain", "public_context": "AA==", "rounds": 1,
            "min_partners": 1, "round_seconds": 10}
    raw = json.dumps(body).encode()
    r = httpx.post(url + "/fl/tasks", content=raw, headers={**sign_request(wallets[0].key, "POST", "/fl/tasks", raw),
                                                            "Content-Type": "application/json"})
    assert r.status_code == 413 and f"at most {svc.max_weights}" in r.json()["detail"], r.text
    body["architecture"] = {"kind": "mlp", "n_features": 3, "hidden": []}
    raw = json.dumps(body).encode()
    r = httpx.post(url + "/fl/tasks", content=raw, headers=sign_request(wallets[0].key, "POST", "/fl/tasks", raw))
    assert r.status_code == 422 and "needs 4" in r.json()["detail"]
    # a 1 TiB body announced: refused from its headers (a raw socket: HTTP clients will not lie)
    host, port = url.removeprefix("http://").split(":")
    signed = "".join(f"{k}: {v}\r\n" for k, v in sign_request(wallets[0].key, "POST", "/fl/tasks", b"{").items())
    with socket.create_connection((host, int(port))) as sock:  # from a publisher: the size is what is refused
        sock.sendall(b"POST /fl/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + signed.encode() +
                     b"Content-Length: %d\r\n\r\n{" % (1 << 40))
        sock.settimeout(30)
        answer = b""
        while b"request body over" not in answer:  # headers and body may come in separate packets
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    assert answer.startswith(b"HTTP/1.1 413") and b"request body over" in answer, answer


def test_update_body_bounded_by_its_task(live_service, wallets, ckks_keys):
    """An update far larger than the task's model can need is refused before it is read whole."""
    url, svc = live_service
    _, task, (a, *_), model = _setup(url, wallets, ckks_keys)
    tid = task["task_id"]
    limit = svc.max_update_bytes(tid)
    assert len(ckks_keys.encrypt(np.ones(model.n_params))) < limit
    path = f"/fl/tasks/{tid}/rounds/1/update?n_samples=10"
    body = b"\0" * (limit + 1)
    r = httpx.post(url + path, content=body, headers={**sign_request(a.key, "POST", path, body),
                                                       "Content-Type": "application/octet-stream"})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]


def test_large_fl_bodies_are_read_only_after_the_claimed_signer_is_checked(live_service, wallets):
    """A body the coordinator would have to hold (a task's weights, an update) is read only
    once the request's headers name a signer allowed to send it: an unsigned or outsider's
    request is answered while its body is still on the way."""
    url, svc = live_service
    host, port = url.removeprefix("http://").split(":")
    outsider = Account.create()

    def only_publishers(owner: str) -> None:  # as the marketplace's on-chain check would
        if owner != wallets[0].address:
            raise Refused(f"{owner} is not an active publisher", 403)

    claims = sign_request(outsider.key, "POST", "/fl/tasks", b"{}")
    svc.may_open = only_publishers
    try:
        for headers, expected in ((b"", b"HTTP/1.1 401"),
                                  ("".join(f"{k}: {v}\r\n" for k, v in claims.items()).encode(), b"HTTP/1.1 403")):
            with socket.create_connection((host, int(port))) as sock:
                sock.settimeout(10)  # the whole 40 MiB never comes: an answer must not wait for it
                sock.sendall(b"POST /fl/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + headers +
                             b"Content-Length: %d\r\n\r\n{" % (40 << 20))
                answer = sock.recv(65536)
            assert answer.startswith(expected), answer
    finally:
        svc.may_open = None
