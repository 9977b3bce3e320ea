"""The purchase refusals of #21 as a member meets them over HTTP: no wash sales, no sale that
pays a suspended publisher, and price errors that name the allowed range."""
from __future__ import annotations

import os

import pytest

from marketplace.client import ApiError


def test_a_publisher_cannot_buy_its_own_product(client, unit, tmp_path):
    _, as_pub = unit(("publisher", "subscriber"), "both")  # a unit may be publisher and subscriber
    f = tmp_path / "own.bin"
    f.write_bytes(os.urandom(500))
    product = as_pub.publish(f, {"title": "Own", "kind": "data"})
    client().approve(product["certificate_id"])
    as_pub.set_plan(product["product_id"], "month", 20)
    before = as_pub.points()["balance"]
    with pytest.raises(ApiError) as err:
        as_pub.buy(product["product_id"], "month")
    assert err.value.status == 403 and "cannot buy its own product" in err.value.detail
    assert as_pub.points()["balance"] == before


def test_a_suspended_publisher_is_neither_paid_nor_able_to_price(listed, client, unit, gm):
    as_pub, product = listed("Suspended", "data", "month", 20)
    publisher = as_pub.account.address
    _, as_sub = unit(("subscriber",), "sub")
    gm.members.suspend(publisher, "under review")
    with pytest.raises(ApiError) as err:
        as_sub.buy(product["product_id"], "month")
    assert err.value.status == 403 and "not an active publisher" in err.value.detail
    assert as_sub.points()["balance"] == 500  # nothing was paid
    with pytest.raises(ApiError) as err:
        as_pub.set_plan(product["product_id"], "week", 15)  # the service refuses before the chain would
    assert err.value.status == 403 and "not an active member with the publisher role" in err.value.detail
    gm.members.reinstate(publisher)
    assert as_sub.buy(product["product_id"], "month")["licence_id"]


def test_a_price_outside_the_bounds_names_them(listed):
    as_pub, product = listed("Priced", "data", "month", 20)
    with pytest.raises(ApiError) as err:
        as_pub.set_plan(product["product_id"], "week", 300)
    assert err.value.status == 400 and "300" in err.value.detail and "10-50" in err.value.detail


def test_buying_a_product_that_does_not_exist_says_so(unit):
    _, as_sub = unit(("subscriber",), "sub")
    with pytest.raises(ApiError) as err:
        as_sub.buy(99_999, "month")
    assert err.value.status == 404 and "there is no product 99999" in err.value.detail
