"""One record of spent vouchers (issue #21, items 2, 4 and 8), on a chain of this module's own
(these tests move its clock) with a real marketplace in front of it.

Both redemption paths and the indexer's copy of on-chain `Redeemed` events share the unique
(holder, nonce) row: a voucher spent on one path is refused on the other, in either order;
every on-chain redemption gets its usage record even when the service died between the chain
and the database; the record carries the holder's signature; and what the redemption path
decides on comes from the chain, not from rows someone could edit."""
from __future__ import annotations

import json
import os
import time

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlmodel import Session

from ledger_node.audit import audit_usage
from ledger_node.audit.ledger import Ledger
from ledger_node.chain import connect
from ledger_node.content.embedded import EmbeddedStore
from ledger_node.contracts import GridMart, Voucher
from ledger_node.deploy import deploy
from ledger_node.devnet import Devnet, free_port
from ledger_node.errors import ContractRevert
from marketplace.app import create_app
from marketplace.client import ApiError, MarketClient
from marketplace.db import make_engine
from marketplace.services import redemption, usage
from marketplace.services.context import Context
from marketplace.settings import MarketplaceSettings
from tests.market.conftest import serve

DAY = 86_400


@pytest.fixture(scope="module")
def own_market(tmp_path_factory):
    """(url, ctx, w3) of a marketplace on a devnet nobody else uses."""
    folder = tmp_path_factory.mktemp("vouchers")
    net = Devnet(port=free_port(), workdir=folder / "devnet").start()
    try:
        w3 = connect(net.url)
        operator = Account.create()
        book, _ = deploy(w3, operator)
        port = free_port()
        settings = MarketplaceSettings(database_url=f"sqlite:///{folder / 'market.db'}", fl_spool=str(folder / "fl"),
                                       domain=f"127.0.0.1:{port}", session_secret="s", anchor_interval_seconds=3600,
                                       max_upload_mb=5)
        ctx = Context(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                      chain=GridMart(w3, book, operator), store=EmbeddedStore(folder / "store"), secret=b"s")
        server, thread = serve(create_app(settings, ctx), port)
        yield f"http://127.0.0.1:{port}", ctx, w3
        server.should_exit = True
        thread.join(timeout=30)
    finally:
        net.stop()


def _members(url: str, ctx: Context) -> tuple[MarketClient, tuple, tuple]:
    """The operator's client, and (account, signed-in client) of a fresh publisher and subscriber."""
    operator = MarketClient(url, ctx.operator)
    operator.login()
    units = []
    for role in ("publisher", "subscriber"):
        account = Account.create()
        operator.admit(account.address, role, role.encode(), [role])
        as_unit = MarketClient(url, account)
        as_unit.login()
        units.append((account, as_unit))
    return operator, units[0], units[1]


@pytest.fixture
def licence(own_market, tmp_path):
    """(subscriber's client, subscriber, licence id, product id) of a product with a per-use
    plan (3 uses) and a month plan; the subscriber has bought the per-use plan only."""
    url, ctx, _ = own_market
    operator, (_, as_pub), (sub, as_sub) = _members(url, ctx)
    f = tmp_path / "data.bin"
    f.write_bytes(os.urandom(3000))
    product = as_pub.publish(f, {"title": "Data", "kind": "data"})
    operator.approve(product["certificate_id"])
    as_pub.set_plan(product["product_id"], "per-use", 20, uses=3)
    as_pub.set_plan(product["product_id"], "month", 30)
    lid = as_sub.buy(product["product_id"], "per-use")["licence_id"]
    return as_sub, sub, lid, product["product_id"]


def _row(ctx: Context, holder: str, nonce: int) -> dict | None:
    with ctx.engine.connect() as conn:
        found = conn.execute(text("SELECT id, on_chain_tx, pending, record_json FROM redemption "
                                  "WHERE holder = :h AND nonce = :n"), {"h": holder, "n": nonce}).mappings().all()
    assert len(found) <= 1
    return dict(found[0]) if found else None


def _uses(ctx: Context, lid: str) -> int:
    return ctx.chain.licensing.licence(int(lid, 16)).uses_left


def _indexed(ctx: Context, w3) -> None:
    head = w3.eth.block_number
    deadline = time.monotonic() + 20
    while ctx.indexer.head_block < head:
        assert time.monotonic() < deadline, "the indexer did not catch up"
        time.sleep(0.05)


def _sign(as_sub: MarketClient, w3, lid: str, nonce: int, seconds: int = 3600) -> dict:
    """A voucher valid for `seconds` of chain time (this chain's clock runs ahead of the wall's)."""
    ahead = max(0, w3.eth.get_block("latest")["timestamp"] - int(time.time()))
    return as_sub.sign_voucher(lid, nonce=nonce, valid_seconds=ahead + seconds)


def _voucher(body: dict) -> tuple[Voucher, bytes]:
    return redemption.voucher_from(body), bytes.fromhex(body["signature"][2:])


def test_nobody_but_the_service_submits_vouchers_on_chain(own_market, licence):
    _, ctx, w3 = own_market
    as_sub, sub, lid, _ = licence
    body = _sign(as_sub, w3, lid, 1)
    voucher, sig = _voucher(body)
    for who in (Account.create(), sub):  # a third party who read the voucher, or the holder itself
        w3.provider.make_request("hardhat_setBalance", [who.address, hex(10**18)])
        with pytest.raises(ContractRevert):
            GridMart(w3, ctx.chain.book, who).licensing.redeem(voucher, sig)
    assert _uses(ctx, lid) == 3 and not ctx.chain.licensing.nonce_used(sub.address, 1)


def test_spent_on_chain_first_then_refused_by_the_time_plan_path(own_market, licence):
    _, ctx, w3 = own_market
    as_sub, sub, lid, product_id = licence
    body = _sign(as_sub, w3, lid, 2)
    as_sub.redeem(body)  # per-use: the service reserves the row, then spends a use on chain
    row = _row(ctx, sub.address, 2)
    record = json.loads(row["record_json"])
    assert not row["pending"] and row["on_chain_tx"] == record["tx"] and record["signature"] == body["signature"]
    assert _uses(ctx, lid) == 2
    as_sub.buy(product_id, "month")  # now the time-plan path answers for this licence
    _indexed(ctx, w3)
    with pytest.raises(ApiError) as err:
        as_sub.redeem(body)
    assert err.value.status == 409 and "replayed" in err.value.detail
    fresh = as_sub.redeem(_sign(as_sub, w3, lid, 3))  # the time-plan path itself works
    assert fresh["url"].startswith("/delivery/") and _row(ctx, sub.address, 3)["on_chain_tx"] is None
    assert _uses(ctx, lid) == 2


def test_spent_off_chain_first_then_refused_on_chain_after_the_plan_ends(own_market, licence):
    _, ctx, w3 = own_market
    as_sub, sub, lid, product_id = licence
    as_sub.buy(product_id, "month")
    _indexed(ctx, w3)
    body = _sign(as_sub, w3, lid, 4, 60 * DAY)
    as_sub.redeem(body)  # the time-plan path: a row, nothing on chain
    assert _row(ctx, sub.address, 4)["on_chain_tx"] is None
    w3.provider.make_request("evm_increaseTime", [31 * DAY])
    w3.provider.make_request("evm_mine", [])
    _indexed(ctx, w3)
    with pytest.raises(ApiError) as err:  # now the per-use path would answer: it checks the row first
        as_sub.redeem(body)
    assert err.value.status == 409
    assert _uses(ctx, lid) == 3 and not ctx.chain.licensing.nonce_used(sub.address, 4)
    spent = as_sub.redeem(_sign(as_sub, w3, lid, 5, 60 * DAY))  # a new voucher spends a use
    assert _uses(ctx, lid) == 2 and _row(ctx, sub.address, 5)["on_chain_tx"] and spent["url"]


def test_an_on_chain_redemption_without_its_record_gets_one_from_the_indexer(own_market, licence):
    """The service died between the chain and the database: the indexer writes the record
    from the transaction itself, signature included; the voucher is then spent for both
    paths, the record is anchored and an auditor proves the holder authorised it."""
    url, ctx, w3 = own_market
    as_sub, sub, lid, product_id = licence
    body = _sign(as_sub, w3, lid, 6)
    voucher, sig = _voucher(body)
    receipt = ctx.chain.licensing.redeem(voucher, sig)  # what the service sent before it died
    _indexed(ctx, w3)
    row = _row(ctx, sub.address, 6)
    assert row is not None and row["on_chain_tx"] == receipt["transactionHash"].to_0x_hex()
    record = json.loads(row["record_json"])
    assert record["signature"] == body["signature"] and record["product"] == product_id
    with pytest.raises(ApiError) as err:
        as_sub.redeem(body)
    assert err.value.status == 409 and _uses(ctx, lid) == 2

    # an operator inventing a record: anchored like any other, but no holder signed it
    invented_voucher, _ = _voucher(_sign(as_sub, w3, lid, 99))
    stranger_sig = bytes.fromhex(_sign(MarketClient(url, Account.create()), w3, lid, 99)["signature"][2:])
    invented = redemption._record(ctx, redemption._usage_row(invented_voucher, stranger_sig, sub.address, product_id))

    assert usage.drain(ctx) >= 1
    ledger = Ledger(w3, ctx.chain.book)
    with Session(ctx.engine) as session:
        bundle, invented_bundle = usage.proof_for(session, row["id"]), usage.proof_for(session, invented)
    report = audit_usage(ledger, bundle)
    assert report.passed, report.failed()
    checks = {c.name: c.passed for c in report.checks}
    assert checks["the holder signed this redemption"] and checks["the licence is the signer's"]
    invented_report = audit_usage(ledger, invented_bundle)
    assert {c.name for c in invented_report.failed()} == {"the holder signed this redemption", "the licence is the signer's"}


def test_reservations_left_by_a_crash_are_settled_or_removed(own_market, licence):
    _, ctx, w3 = own_market
    as_sub, sub, lid, product_id = licence
    reached, lost = (_voucher(_sign(as_sub, w3, lid, n, 120)) for n in (7, 8))
    for voucher, sig in (reached, lost):  # the service reserved both, then died
        redemption._record(ctx, redemption._usage_row(voucher, sig, sub.address, product_id, pending=True))
    ctx.chain.licensing.redeem(*reached)  # ... after one of them had reached the chain
    _indexed(ctx, w3)
    assert not _row(ctx, sub.address, 7)["pending"]  # the indexer settled it
    assert _row(ctx, sub.address, 8)["pending"]
    with pytest.raises(ApiError):  # still reserved: refused, not spent twice
        as_sub.redeem(_sign(as_sub, w3, lid, 8))
    assert redemption.settle_reservations(ctx, older_than=0) == (0, 0)  # its voucher may still reach the chain
    w3.provider.make_request("evm_increaseTime", [600])
    w3.provider.make_request("evm_mine", [])
    assert redemption.settle_reservations(ctx, older_than=0) == (0, 1)  # expired unspent: it can never
    assert _row(ctx, sub.address, 8) is None and _uses(ctx, lid) == 2


def test_redemption_decides_on_the_chain_not_on_edited_rows(own_market, licence):
    url, ctx, w3 = own_market
    as_sub, sub, lid, product_id = licence
    far = int(time.time()) + 365 * DAY
    with ctx.engine.begin() as conn:  # a time plan the chain never sold, and a changed CID
        conn.execute(text("UPDATE licence SET expires_at = :t WHERE id = :id"), {"t": far, "id": lid})
        conn.execute(text("UPDATE certificate SET cid = 'bafkreiaaaa' WHERE product_id = :p"), {"p": product_id})
    delivery = as_sub.redeem(_sign(as_sub, w3, lid, 9))
    assert _row(ctx, sub.address, 9)["on_chain_tx"]  # the per-use path answered: a use was spent on chain
    assert _uses(ctx, lid) == 2
    cert = ctx.chain.products.registration(delivery["certificate_id"], from_block=ctx.chain.book.deployed_at_block)
    assert delivery["cid"] != "bafkreiaaaa" and delivery["sha256"] == cert["listing"].sha256.hex()

    with ctx.engine.begin() as conn:  # a sharing mode the publisher never signed
        conn.execute(text("UPDATE certificate SET metadata_json = replace(metadata_json, '\"download\"', "
                          "'\"remote-run\"') WHERE product_id = :p"), {"p": product_id})
    ctx.indexer.products.clear()
    with pytest.raises(ApiError) as err:
        as_sub.redeem(_sign(as_sub, w3, lid, 10))
    assert err.value.status == 503 and "on-chain hash" in err.value.detail
    assert _uses(ctx, lid) == 2 and _row(ctx, sub.address, 10) is None  # refused before a use was spent

    with ctx.engine.begin() as conn:  # the holder suspended on chain, "active" in the index
        conn.execute(text("UPDATE certificate SET metadata_json = replace(metadata_json, '\"remote-run\"', "
                          "'\"download\"') WHERE product_id = :p"), {"p": product_id})
    ctx.indexer.products.clear()
    as_sub.buy(product_id, "month")
    ctx.chain.members.suspend(sub.address, "test")
    _indexed(ctx, w3)
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE member SET status = 'active' WHERE address = :a"), {"a": sub.address})
    with pytest.raises(ApiError) as err:
        as_sub.redeem(_sign(as_sub, w3, lid, 11))
    assert err.value.status == 403
    ctx.chain.members.reinstate(sub.address)
    _indexed(ctx, w3)
    assert as_sub.redeem(_sign(as_sub, w3, lid, 12))["url"]


def test_a_key_envelope_moved_between_products_is_refused(own_market, tmp_path):
    """An edited Upload row cannot hand one product's content key to another's buyers."""
    url, ctx, w3 = own_market
    operator, (_, as_pub), (sub, as_sub) = _members(url, ctx)
    products = []
    for name in ("secret-a", "secret-b"):
        f = tmp_path / name
        f.write_bytes(os.urandom(5000))
        product = as_pub.publish(f, {"title": name, "kind": "data"}, encrypt=True)
        operator.approve(product["certificate_id"])
        as_pub.set_plan(product["product_id"], "per-use", 20, uses=3)
        products.append(product)
    lid = as_sub.buy(products[0]["product_id"], "per-use")["licence_id"]
    with ctx.engine.begin() as conn:  # the cheap product's row now holds the other's key
        other = conn.execute(text("SELECT key_envelope FROM upload WHERE cid = :c"), {"c": products[1]["cid"]}).scalar_one()
        conn.execute(text("UPDATE upload SET key_envelope = :e WHERE cid = :c"), {"e": other, "c": products[0]["cid"]})
    ctx.indexer.products.clear()
    with pytest.raises(ApiError) as err:
        as_sub.redeem(_sign(as_sub, w3, lid, 1))
    assert err.value.status == 503 and "key envelope" in err.value.detail
    assert _uses(ctx, lid) == 3 and _row(ctx, sub.address, 1) is None  # refused before anything was spent
