"""The whole story, end to end, over HTTP on the real Hardhat node and the real js-ipfs daemon."""
from __future__ import annotations

import os
import time

import pytest

from marketplace.client import ApiError


def test_admit_publish_encrypted_approve_buy_redeem_three_times(market, client, unit, tmp_path, gm):
    url, ctx = market
    operator = client()
    a, as_a = unit(("publisher",), "Province A")
    b, as_b = unit(("subscriber",), "Province B")
    fee_account = ctx.chain.licensing._call("feeRecipient")
    fee_before = gm.points.balance_of(fee_account)

    artifact = tmp_path / "load-profiles.csv"
    artifact.write_bytes(os.urandom(700_000))  # > 2 chunks
    published = as_a.publish(artifact, {"title": "Load profiles 2026", "kind": "data", "tags": ["load", "sgcc"],
                                        "description": "15-minute profiles", "sharing_mode": "download"},
                             encrypt=True)
    product = published["product_id"]
    assert as_b.catalogue() == [] or product not in [p["id"] for p in as_b.catalogue()]  # pending: not on sale
    operator.approve(published["certificate_id"])
    as_a.set_plan(product, "per-use", 30, 3)
    listed = {p["id"]: p for p in as_b.catalogue(tag="sgcc")}
    assert listed[product]["plans"] == [{"kind": "per-use", "price": 30, "uses": 3}]
    page = as_b.product(product)
    assert page["versions"][0]["cid"] == published["cid"] and page["versions"][0]["metadata"]["title"] == "Load profiles 2026"

    order = as_b.buy(product, "per-use")
    assert order["price"] == 30 and order["fee"] == 2 and order["uses_left"] == 3
    assert gm.points.balance_of(b.address) == 470
    assert gm.points.balance_of(a.address) == 500 + 28
    assert gm.points.balance_of(fee_account) == fee_before + 2

    for n in range(3):
        delivery = as_b.redeem(as_b.sign_voucher(order["licence_id"], nonce=n))
        assert delivery["encrypted"] and delivery["cid"] == published["cid"]
        out = as_b.download(delivery, tmp_path / f"copy{n}")
        assert out.read_bytes() == artifact.read_bytes()
    with pytest.raises(ApiError) as err:
        as_b.redeem(as_b.sign_voucher(order["licence_id"], nonce=3))
    assert err.value.status == 403 and "used up" in err.value.detail
    with pytest.raises(ApiError) as err:  # a replayed voucher
        as_b.redeem(as_b.sign_voucher(order["licence_id"], nonce=1))
    assert err.value.status in (403, 409)

    # on chain and in the index
    assert not gm.licensing.is_authorized(b.address, product)
    licences = as_b.licences()
    assert licences[0]["uses_left"] == 0 and not licences[0]["active"]
    history = as_b.points()["history"]
    assert [h["delta"] for h in history] == [500, -28, -2]
    income = operator._request("GET", "/operator/income")
    assert income["fee_income"] >= 2
    # usage records get anchored and proven
    deadline = time.monotonic() + 20
    while True:
        try:
            proof = operator._request("GET", "/usage/1/proof")
            break
        except ApiError:
            assert time.monotonic() < deadline, "usage records were not anchored"
            time.sleep(0.3)
    from ledger_node.merkle import leaf_hash
    assert gm.usage.verify(proof["batch_id"], leaf_hash(proof["record"].encode()),
                           [bytes.fromhex(p) for p in proof["proof"]])
