"""Every 4xx path of the API says what is wrong, and leaves nothing half-written."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlmodel import Session, select

from marketplace.client import ApiError, MarketClient
from marketplace.models import PendingListing, Upload
from marketplace.services.siwe import SiweMessage


def _login_with(url: str, account, mutate) -> httpx.Response:
    http = httpx.Client(base_url=url)
    challenge = http.post("/auth/nonce", json={"address": account.address}).json()
    msg = SiweMessage.parse(challenge["message"])
    mutate(msg)
    text = msg.to_text()
    sig = account.sign_message(encode_defunct(text=text)).signature.to_0x_hex()
    return http.post("/auth/login", json={"message": text, "signature": sig})


def test_siwe_rejections(market):
    url, ctx = market
    acct = Account.create()
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    cases = {
        "domain": lambda m: setattr(m, "domain", "evil.example"),
        "chain id": lambda m: setattr(m, "chain_id", 1),
        "expired": lambda m: setattr(m, "expiration_time", past),
        "nonce": lambda m: setattr(m, "nonce", "abcdefgh12345678"),
    }
    for expected, mutate in cases.items():
        r = _login_with(url, acct, mutate)
        assert r.status_code == 401 and expected in r.json()["detail"].lower(), (expected, r.json())
    r = _login_with(url, acct, lambda m: setattr(m, "address", Account.create().address))
    assert r.status_code == 401 and "not made by the address" in r.json()["detail"]
    http = httpx.Client(base_url=url)
    assert http.post("/auth/login", json={"message": "hello", "signature": "0x00"}).status_code == 401
    # a nonce is single-use
    challenge = http.post("/auth/nonce", json={"address": acct.address}).json()
    sig = acct.sign_message(encode_defunct(text=challenge["message"])).signature.to_0x_hex()
    assert http.post("/auth/login", json={"message": challenge["message"], "signature": sig}).status_code == 200
    r = http.post("/auth/login", json={"message": challenge["message"], "signature": sig})
    assert r.status_code == 401 and "already used" in r.json()["detail"]
    assert http.get("/licences").status_code == 401
    assert http.get("/licences", headers={"Authorization": "Bearer forged.token"}).status_code == 401


def test_wrong_roles(market, client, unit, tmp_path):
    sub, as_sub = unit(("subscriber",))
    pub, as_pub = unit(("publisher",))
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    with pytest.raises(ApiError) as err:
        as_sub.upload(f)
    assert err.value.status == 403 and "publisher role" in err.value.detail
    with pytest.raises(ApiError) as err:
        as_pub.admit(Account.create().address, "rogue", b"id", ["subscriber"])
    assert err.value.status == 403
    published = as_pub.publish(f, {"title": "t", "kind": "data"})
    with pytest.raises(ApiError) as err:
        as_pub.approve(published["certificate_id"])
    assert err.value.status == 403 and "operator" in err.value.detail
    with pytest.raises(ApiError) as err:
        as_sub.withdraw(published["certificate_id"])
    assert err.value.status == 403
    outsider = MarketClient(market[0], Account.create())
    outsider.login()  # anyone may sign in, but a non-member can do nothing
    with pytest.raises(ApiError) as err:
        outsider.buy(published["product_id"], "month")
    assert err.value.status == 403


def test_bad_input_and_unknown_things(market, client, unit, tmp_path):
    url, ctx = market
    pub, as_pub = unit(("publisher",))
    sub, as_sub = unit(("subscriber",))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))  # the fixture's limit is 5 MiB
    with pytest.raises(ApiError) as err:
        as_pub.upload(big)
    assert err.value.status == 413 and "GRIDMART_MAX_UPLOAD_MB" in err.value.detail
    with Session(ctx.engine) as s:
        assert not s.exec(select(Upload).where(Upload.uploader == pub.address)).all()

    small = tmp_path / "s.bin"
    small.write_bytes(b"data")
    with pytest.raises(ApiError) as err:
        as_pub.publish(small, {"title": "", "kind": "spaceship"})
    assert err.value.status == 422 and "kind" in err.value.detail and "title" in err.value.detail
    with pytest.raises(ApiError) as err:
        as_pub.publish(small, {"title": "x", "kind": "data", "sharing_mode": "fax"})
    assert err.value.status == 422

    # a listing signed by another wallet is refused before anything reaches the chain
    up = as_pub.upload(small)
    meta = {"title": "forged", "kind": "data"}
    doc = as_pub._request("POST", "/listings/prepare", json={"cid": up["cid"], "metadata": meta})
    from eth_account.messages import encode_typed_data
    forged = Account.create().sign_message(encode_typed_data(full_message=doc)).signature.to_0x_hex()
    with pytest.raises(ApiError) as err:
        as_pub._request("POST", "/listings", json={"cid": up["cid"], "metadata": meta, "signature": forged,
                                                   "nonce": doc["message"]["nonce"], "deadline": doc["message"]["deadline"]})
    assert err.value.status == 400 and "rejected signature" in err.value.detail
    with pytest.raises(ApiError) as err:
        as_pub._request("POST", "/listings/prepare", json={"cid": "bafkunknown", "metadata": meta})
    assert err.value.status == 404

    with pytest.raises(ApiError) as err:
        as_sub.product(999_999)
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        as_sub.buy(999_999, "month")
    assert err.value.status in (404, 409)
    with pytest.raises(ApiError) as err:
        as_sub.buy(1, "fortnight")
    assert err.value.status == 400 and "per-use, week, month or year" in err.value.detail
    with pytest.raises(ApiError) as err:
        as_sub.redeem(as_sub.sign_voucher("0x" + "ab" * 32))
    assert err.value.status == 404
    assert httpx.get(f"{url}/delivery/forged.token").status_code == 403


def test_too_few_points_and_off_shelf(market, client, unit, listed, gm):
    operator = client()
    as_pub, product = listed("Expensive", "tool", "year", 50)
    sub, as_sub = unit(("subscriber",))
    with pytest.raises(ApiError) as err:
        as_pub.set_plan(product["product_id"], "week", 70)
    assert err.value.status == 400 and "range" in err.value.detail
    for _ in range(10):
        as_sub.buy(product["product_id"], "year")
    with pytest.raises(ApiError) as err:
        as_sub.buy(product["product_id"], "year")
    assert err.value.status == 409 and "too few points" in err.value.detail
    assert gm.points.balance_of(sub.address) == 0

    late, as_late = unit(("subscriber",))
    operator.withdraw(product["certificate_id"])
    with pytest.raises(ApiError) as err:
        as_late.buy(product["product_id"], "year")
    assert err.value.status == 409 and "off the shelf" in err.value.detail
    assert gm.points.balance_of(late.address) == 500
    # the earlier buyer's licence is still valid: it can still redeem
    lic = as_sub.licences()[0]
    assert lic["active"]
    assert as_sub.redeem(as_sub.sign_voucher(lic["id"]))["cid"] == product["cid"]


def test_pending_listing_is_not_left_behind_by_a_refused_signature(market):
    _, ctx = market
    with Session(ctx.engine) as s:
        assert not s.exec(select(PendingListing).where(PendingListing.metadata_json.contains("forged"))).all()


def test_a_purchase_the_wallet_sent_itself(market, unit, listed, gm):
    """Wallets such as MetaMask only sign to send: the wallet broadcasts, the service checks the
    transaction it finds by hash (sender, chain, contract, function) and reports what it did."""
    _, product = listed("Wallet-sent", "data", "month", 20)
    sub, as_sub = unit(("subscriber",))
    other, as_other = unit(("subscriber",))

    def send(account, body) -> str:  # what the wallet does with /tx/prepare's transaction
        tx = as_sub._request("POST", "/tx/prepare", json=body) if account is sub else \
            as_other._request("POST", "/tx/prepare", json=body)
        return gm.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction).to_0x_hex()

    buy = {"action": "purchase", "product_id": product["product_id"], "plan": "month"}
    tx_hash = send(sub, buy)
    out = as_sub._request("POST", "/tx", json={"action": "purchase", "tx_hash": tx_hash})
    assert out["tx_hash"] == tx_hash and out["price"] == 20 and out["balance"] == 480
    again = as_sub._request("POST", "/tx", json={"action": "purchase", "tx_hash": tx_hash})
    assert again == out and gm.points.balance_of(sub.address) == 480  # reported twice, paid once
    assert as_sub.redeem(as_sub.sign_voucher(out["licence_id"]))["cid"] == product["cid"]

    refusals = [
        ({"action": "purchase", "tx_hash": send(other, buy)}, 403, "another wallet"),
        ({"action": "set_plan", "tx_hash": tx_hash}, 400, "does not call set_plan"),
        ({"action": "purchase", "tx_hash": "0x" + "00" * 32}, 404, "no transaction"),
        ({"action": "purchase", "tx_hash": "0x1234"}, 400, "32-byte hash"),
        ({"action": "purchase"}, 400, "either signed_tx"),
        ({"action": "purchase", "tx_hash": tx_hash, "signed_tx": "0x00"}, 400, "either signed_tx"),
    ]
    for body, status, needle in refusals:
        with pytest.raises(ApiError) as err:
            as_sub._request("POST", "/tx", json=body)
        assert err.value.status == status and needle in err.value.detail, (body, err.value)
