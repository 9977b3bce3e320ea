"""The time-plan redemption hot path: the fast lane, the cached licence check against the index
freshness rule, the group-committed usage rows (nothing acknowledged is lost, nothing is
written twice) and the anchoring that keeps up with them."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from ledger_node import typed_data
from ledger_node.content.embedded import EmbeddedStore
from ledger_node.merkle import MerkleTree, leaf_hash
from marketplace.db import make_engine
from marketplace.services import usage
from marketplace.services.chain_facts import MISSING, FactCache
from marketplace.services.context import Context
from marketplace.services.recorder import MAX_NONCE, Recorder, Replayed, UsageRow, insert_rows
from marketplace.settings import MarketplaceSettings

ROOT = Path(__file__).resolve().parents[2]


def _row(nonce: int, holder: str = "0x" + "11" * 20, at: int | None = None) -> UsageRow:
    at = at or int(time.time())
    record = {"kind": "redeem", "licence": "0x" + "ab" * 32, "holder": holder, "product": 1, "nonce": nonce,
              "purpose": "download", "at": at}
    return UsageRow("0x" + "ab" * 32, holder, nonce, "download", None, at,
                    json.dumps(record, sort_keys=True, separators=(",", ":")))


def _count(engine, where: str = "1=1") -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM redemption WHERE {where}")).scalar_one()


# ------------------------------------------------------------------ the recorder alone


def test_group_commit_answers_each_row_and_refuses_replays(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    insert_rows(engine, [_row(0)])  # already redeemed
    recorder = Recorder(engine).start()

    async def run():
        rows = [_row(n) for n in range(300)] + [_row(5), _row(7)]  # 0, 5 and 7 come twice
        return await asyncio.gather(*(recorder.record(r) for r in rows), return_exceptions=True)

    try:
        results = asyncio.run(run())
        ids = [r for r in results if isinstance(r, int)]
        assert sum(isinstance(r, Replayed) for r in results) == 3
        assert len(ids) == len(set(ids)) == 299
        assert isinstance(results[0], Replayed) and isinstance(results[-1], Replayed)
        assert recorder.batches < 300 / 10  # grouped: one commit served many requests
        # from threads too (the chain path runs in the thread pool)
        assert isinstance(recorder.record_sync(_row(1000)), int)
        with pytest.raises(Replayed):
            recorder.record_sync(_row(1000))
    finally:
        recorder.stop()
    assert _count(engine) == 1 + 299 + 1
    with pytest.raises(RuntimeError):
        recorder.record_sync(_row(2000))


def test_a_bad_row_fails_alone_and_the_rest_of_its_batch_is_written(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    broken = UsageRow("0x" + "ab" * 32, None, 3, "download", None, 1, "{}")  # holder is NOT NULL
    with pytest.raises(Exception) as err:  # the statement fails: nothing of the group is committed
        insert_rows(engine, [_row(1), _row(2), broken])
    assert not isinstance(err.value, Replayed) and _count(engine) == 0
    recorder = Recorder(engine).start()

    async def run(rows):
        return await asyncio.gather(*(recorder.record(r) for r in rows), return_exceptions=True)

    try:
        # the writer then writes the group's rows one by one: only the bad one's request fails
        first, second, bad = asyncio.run(run([_row(1), _row(2), broken]))
        assert isinstance(first, int) and isinstance(second, int)
        assert isinstance(bad, Exception) and not isinstance(bad, Replayed)
        assert _count(engine) == 2
        results = asyncio.run(run([_row(1), _row(3)]))
        assert isinstance(results[0], Replayed) and isinstance(results[1], int)
    finally:
        recorder.stop()
    assert _count(engine) == 3


CHILD = """
import asyncio, json, sys, time
from marketplace.db import make_engine
from marketplace.services.recorder import Recorder, UsageRow

recorder = Recorder(make_engine(sys.argv[1])).start()

async def worker(first):
    for nonce in range(first, first + 1_000_000, 16):
        row = UsageRow("0x" + "ab" * 32, "0x" + "22" * 20, nonce, "download", None, int(time.time()), "{}")
        rid = await recorder.record(row)
        sys.stdout.write(f"{rid} {nonce}\\n")
        sys.stdout.flush()

async def main():
    await asyncio.gather(*(worker(i) for i in range(16)))

asyncio.run(main())
"""


def test_every_acknowledged_row_survives_a_kill(tmp_path):
    """A redemption is answered only after its row is committed: kill -9 the writer in full
    flow, and every row it had acknowledged is in the database, once."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    make_engine(url)  # the tables
    child = subprocess.Popen([sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    acked: dict[int, int] = {}
    try:
        for line in child.stdout:
            rid, nonce = map(int, line.split())
            acked[rid] = nonce
            if len(acked) >= 2000:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert len(acked) == 2000
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, nonce FROM redemption")).all())
    assert all(stored.get(rid) == nonce for rid, nonce in acked.items())
    assert len(set(stored.values())) == len(stored)  # no (holder, nonce) twice


def test_fact_cache_never_keeps_a_value_read_across_an_eviction():
    cache = FactCache()
    epoch = cache.epoch
    cache.put("k", "v", epoch)
    assert cache.get("k") == "v" and cache.get("other") is MISSING
    before = cache.epoch  # a reader fetches "other" from the chain while the indexer evicts it
    cache.evict(["other"])
    cache.put("other", "stale", before)
    assert cache.get("other") is MISSING and cache.get("k") == "v"  # unrelated facts stay
    cache.evict(["k"])
    assert cache.get("k") is MISSING
    assert cache.get_or_fetch("k", lambda: "v2") == "v2" and cache.get("k") == "v2"


# ------------------------------------------------------------------ over HTTP


def _wait_indexed(ctx: Context, receipt) -> None:
    deadline = time.monotonic() + 20
    while ctx.indexer.head_block < receipt["blockNumber"]:
        assert time.monotonic() < deadline, "the indexer did not catch up"
        time.sleep(0.05)


def _time_plan(client, unit, tmp_path):
    """(subscriber account, its client, licence id) of a month plan on a small artifact."""
    operator = client()
    _, as_pub = unit(("publisher",), "pub")
    sub, as_sub = unit(("subscriber",), "sub")
    f = tmp_path / "small.bin"
    f.write_bytes(os.urandom(2048))
    listing = as_pub.publish(f, {"title": "Small", "kind": "data"})
    operator.approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "month", 20)
    return sub, as_sub, as_sub.buy(listing["product_id"], "month")["licence_id"]


def _post(url: str, body, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/redeem", json=body, timeout=30, **kwargs)


def test_time_plan_checks_on_the_hot_path(market, client, unit, tmp_path, gm):
    url, ctx = market
    sub, as_sub, licence = _time_plan(client, unit, tmp_path)
    voucher = as_sub.sign_voucher(licence, nonce=1)
    first = _post(url, voucher)
    assert first.status_code == 200 and first.json()["url"].startswith("/delivery/")
    replay = _post(url, voucher)
    assert replay.status_code == 409 and "replayed" in replay.json()["detail"]

    # a high-s twin of a valid signature: the contract would refuse it, so does the index path
    v2 = as_sub.sign_voucher(licence, nonce=2)
    sig = bytes.fromhex(v2["signature"][2:])
    twin = sig[:32] + (typed_data.SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + \
        bytes((55 - sig[64],))
    bad = _post(url, {**v2, "signature": "0x" + twin.hex()})
    assert bad.status_code == 400 and "rejected signature" in bad.json()["detail"]
    # someone else's signature on the holder's licence
    other, as_other = unit(("subscriber",), "other")
    theirs = _post(url, as_other.sign_voucher(licence, nonce=3))
    assert theirs.status_code == 400 and f"not by {other.address}, which signed the voucher" in theirs.json()["detail"]
    too_big = _post(url, as_sub.sign_voucher(licence, nonce=MAX_NONCE + 1))  # the schema declares the range
    assert too_big.status_code == 422 and "nonce" in too_big.json()["detail"]
    # a zero byte inside the purpose (it is stored as text): refused before anything is written
    zero = _post(url, {**as_sub.sign_voucher(licence, nonce=5), "purpose": "0x410042"})
    assert zero.status_code == 400 and "zero byte" in zero.json()["detail"]
    # what the fast lane does not take goes to FastAPI, which answers as before
    invalid = _post(url, {**v2, "nonce": -1})
    assert invalid.status_code == 422 and invalid.json()["detail"].startswith("invalid request")
    assert _post(url, [v2]).status_code == 422
    assert httpx.post(f"{url}/redeem", content=json.dumps(v2), headers={"content-type": "text/plain"}).status_code == 422
    padded = {**as_sub.sign_voucher(licence, nonce=4), "padding": "x" * 70_000}  # over the fast lane's limit
    routed = _post(url, padded)
    assert routed.status_code == 200 and routed.json().keys() == first.json().keys()
    assert _post(url, v2).status_code == 200  # the refused twin burnt nothing

    # revocation: the licence row was cached by the redemptions above; the index's next
    # generation must drop it
    _wait_indexed(ctx, gm.licensing.revoke(int(licence, 16), "test"))
    revoked = _post(url, as_sub.sign_voucher(licence, nonce=5))
    assert revoked.status_code == 403 and "expired" in revoked.json()["detail"]


def test_suspended_holder_is_refused(market, client, unit, tmp_path, gm):
    url, ctx = market
    sub, as_sub, licence = _time_plan(client, unit, tmp_path)
    assert _post(url, as_sub.sign_voucher(licence, nonce=1)).status_code == 200
    _wait_indexed(ctx, gm.members.suspend(sub.address, "test"))
    refused = _post(url, as_sub.sign_voucher(licence, nonce=2))
    assert refused.status_code == 403 and "not an active subscriber" in refused.json()["detail"]


def test_a_stale_index_sends_time_plans_to_the_chain(market, client, unit, tmp_path):
    url, ctx = market
    sub, as_sub, licence = _time_plan(client, unit, tmp_path)
    lag = ctx.settings.index_max_lag_seconds
    ctx.settings.index_max_lag_seconds = -1.0  # no view of the index is ever current enough
    try:
        voucher = as_sub.sign_voucher(licence, nonce=11)
        answered = _post(url, voucher)
        assert answered.status_code == 200
        assert _post(url, voucher).status_code == 409  # burnt off chain by the same unique row
    finally:
        ctx.settings.index_max_lag_seconds = lag
    assert _count(ctx.engine, f"holder = '{sub.address}' AND nonce = 11 AND on_chain_tx IS NULL") == 1


def test_concurrent_redemptions_each_answered_once(market, client, unit, tmp_path):
    url, ctx = market
    sub, as_sub, licence = _time_plan(client, unit, tmp_path)
    vouchers = [as_sub.sign_voucher(licence, nonce=n) for n in range(40)]
    statuses: list[int] = []

    def fire(v):
        statuses.append(_post(url, v).status_code)

    threads = [threading.Thread(target=fire, args=(v,)) for v in vouchers + vouchers[:10]]  # 10 replayed at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 40 + [409] * 10
    assert _count(ctx.engine, f"holder = '{sub.address}'") == 40


# ------------------------------------------------------------------ anchoring keeps up


@pytest.fixture
def anchoring(gm, operator, tmp_path):
    settings = MarketplaceSettings(database_url=f"sqlite:///{tmp_path / 'a.db'}", anchor_batch_size=100,
                                   fl_spool=str(tmp_path / "fl"))
    return Context(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                   chain=gm, store=EmbeddedStore(tmp_path / "content"), secret=b"x")


def _proven(ctx: Context, gm, rid: int) -> bool:
    with Session(ctx.engine) as session:
        proof = usage.proof_for(session, rid)
    return proof is not None and gm.usage.verify(proof["batch_id"], leaf_hash(proof["record"].encode()),
                                                  [bytes.fromhex(p) for p in proof["proof"]])


def test_drain_anchors_every_full_batch_then_the_rest(anchoring, gm):
    ctx = anchoring
    ids = insert_rows(ctx.engine, [_row(n) for n in range(250)])
    assert usage.drain(ctx, partial=False) == 2  # full batches only: 50 wait for the interval
    assert _count(ctx.engine, "batch_id IS NULL") == 50
    assert usage.drain(ctx) == 1
    assert _count(ctx.engine, "batch_id IS NULL") == 0
    assert all(_proven(ctx, gm, rid) for rid in (ids[0], ids[99], ids[100], ids[249]))
    assert usage.drain(ctx) == 0


def _fix_batch(ctx: Context) -> tuple[str, list[tuple[int, int]]]:
    """Do what a flush does before it sends the anchor (as if it died right after)."""
    with ctx.engine.begin() as conn:
        rows = conn.execute(text("SELECT id, at, record_json FROM redemption WHERE batch_id IS NULL ORDER BY id")).all()
        root = MerkleTree.from_leaves([leaf_hash(r[2].encode()) for r in rows]).root.hex()
        for i, r in enumerate(rows):
            conn.execute(text("UPDATE redemption SET batch_root = :root, leaf_index = :i WHERE id = :id"),
                         {"root": root, "i": i, "id": r[0]})
    return root, [(r[0], r[1]) for r in rows]


def test_a_batch_fixed_before_a_crash_is_finished_not_duplicated(anchoring, gm):
    ctx = anchoring
    # fixed, never sent: anchored by the next flush with that same root
    first = insert_rows(ctx.engine, [_row(n, at=1000 + n) for n in range(10)])
    root, _ = _fix_batch(ctx)
    assert usage.drain(ctx) == 1
    assert _proven(ctx, gm, first[3])
    with Session(ctx.engine) as session:
        assert usage.proof_for(session, first[0])["root"] == root
    # fixed and sent, but the batch id never written: found on chain, not sent again
    second = insert_rows(ctx.engine, [_row(n, at=2000 + n) for n in range(100, 110)])
    root, rows = _fix_batch(ctx)
    batch_id, _ = gm.usage.anchor(bytes.fromhex(root), len(rows), 2000, 2009)
    assert usage.drain(ctx) == 1
    assert _count(ctx.engine, f"batch_id = {batch_id}") == 10
    assert len(gm.usage.contract.events.BatchAnchored().get_logs(
        from_block=gm.book.deployed_at_block, argument_filters={"root": bytes.fromhex(root)})) == 1
    assert _proven(ctx, gm, second[9])
