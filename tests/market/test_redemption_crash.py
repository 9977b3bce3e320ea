"""kill -9 the service in the middle of per-use redemptions on PostgreSQL: afterwards every
on-chain redemption has exactly one usage record, every acknowledged one is there, and a
reservation the crash left is either settled from the chain or never reached it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, select

from marketplace.db import make_engine
from marketplace.models import PendingListing
from marketplace.services import redemption
from marketplace.services.context import Context
from marketplace.services.indexer import Indexer
from marketplace.settings import MarketplaceSettings

from .test_postgres import postgres  # noqa: F401 - the module's own PostgreSQL server

ROOT = Path(__file__).resolve().parents[2]
VOUCHERS = 54

CHILD = """
import json, os, sys, threading
from eth_account import Account
from sqlmodel import Session
from ledger_node.contracts import connect_gridmart
from marketplace.db import make_engine
from marketplace.models import PendingListing
from marketplace.services import redemption
from marketplace.services.context import Context
from marketplace.services.indexer import Indexer
from marketplace.settings import MarketplaceSettings

operator = Account.from_key(os.environ["CRASH_OPERATOR_KEY"])
settings = MarketplaceSettings(database_url=sys.argv[1], session_secret="s")
ctx = Context(settings=settings, engine=make_engine(sys.argv[1]), operator=operator,
              chain=connect_gridmart(operator, url=os.environ["CRASH_RPC_URL"]), store=None, secret=b"s")
ctx.indexer = Indexer(ctx)
ctx.indexer.sync()
vouchers = json.loads(sys.stdin.read())
lock = threading.Lock()

def work(chunk):
    for body in chunk:
        with Session(ctx.engine) as session:
            redemption.redeem(ctx, session, redemption.voucher_from(body), body["signature"])
        with lock:
            sys.stdout.write(f"{body['nonce']}\\n")
            sys.stdout.flush()

threads = [threading.Thread(target=work, args=(vouchers[i::4],)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_a_killed_service_loses_and_duplicates_no_redemption(postgres, market, client, unit, operator, devnet,  # noqa: F811
                                                             tmp_path):
    _, as_pub = unit(("publisher",), "pub")
    sub, as_sub = unit(("subscriber",), "sub")
    f = tmp_path / "data.bin"
    f.write_bytes(os.urandom(2000))
    product = as_pub.publish(f, {"title": "Crash", "kind": "data"})
    client().approve(product["certificate_id"])
    as_pub.set_plan(product["product_id"], "per-use", 20, uses=VOUCHERS + 10)
    lid = as_sub.buy(product["product_id"], "per-use")["licence_id"]
    vouchers = [as_sub.sign_voucher(lid, nonce=n, valid_seconds=3600) for n in range(VOUCHERS)]

    with Session(market[1].engine) as src, Session(make_engine(postgres)) as dst:  # the off-chain metadata
        for row in src.exec(select(PendingListing)).all():
            dst.merge(PendingListing(**row.model_dump()))
        dst.commit()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_OPERATOR_KEY": operator.key.hex(), "CRASH_RPC_URL": devnet.url}
    errors = tmp_path / "child.err"
    child = subprocess.Popen([sys.executable, "-c", CHILD, postgres], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=errors.open("w"), text=True, cwd=ROOT, env=env)
    acked: set[int] = set()
    try:
        child.stdin.write(json.dumps(vouchers))
        child.stdin.close()
        for line in child.stdout:
            acked.add(int(line))
            if len(acked) >= 20:
                break
        time.sleep(0.013)  # kill at a moment of its own, not right after an answer: mid-transaction, likely
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert len(acked) == 20, errors.read_text()[-3000:]

    settings = MarketplaceSettings(database_url=postgres, session_secret="s")
    ctx = Context(settings=settings, engine=make_engine(postgres), operator=operator, chain=market[1].chain, store=None,
                  secret=b"s")
    ctx.indexer = Indexer(ctx)
    ctx.indexer.sync()  # the restarted service's indexer copies what reached the chain
    redemption.settle_reservations(ctx, older_than=0)

    logs = ctx.chain.licensing.contract.events.Redeemed().get_logs(
        from_block=ctx.chain.book.deployed_at_block, argument_filters={"holder": sub.address})
    on_chain = {log["args"]["nonce"]: log["transactionHash"].to_0x_hex() for log in logs}
    with ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT nonce, on_chain_tx, pending FROM redemption WHERE holder = :h"),
                            {"h": sub.address}).all()
    by_nonce = {nonce: (tx, pending) for nonce, tx, pending in rows}
    assert len(by_nonce) == len(rows)  # no voucher twice
    assert acked <= set(on_chain)  # everything acknowledged was spent on chain ...
    assert {n: by_nonce.get(n) for n in on_chain} == {n: (tx, False) for n, tx in on_chain.items()}  # ... and recorded
    assert all(pending and n not in on_chain for n, (_, pending) in by_nonce.items() if n not in on_chain)
    assert ctx.chain.licensing.licence(int(lid, 16)).uses_left == VOUCHERS + 10 - len(on_chain)
    print(f"killed after {len(acked)} acknowledged; {len(on_chain)} on chain, "
          f"{len(by_nonce) - len(on_chain)} reservations that never reached it")
