"""Licensing: plans, the 94/6 split, redemption vouchers, expiry, revocation, conservation."""
from __future__ import annotations

import random

import pytest
from eth_account import Account

from ledger_node.contracts import PlanKind, Role, Voucher
from ledger_node.errors import ContractRevert

from .helpers import chain_time, increase_time, publish


@pytest.fixture
def market(gm, member):
    """A publisher with an on-shelf product and a subscriber."""
    pub, as_pub = member(Role.PUBLISHER)
    sub, as_sub = member(Role.SUBSCRIBER)
    product = publish(gm, pub)
    return pub, as_pub, sub, as_sub, product


def voucher(gm, licence_id, nonce, deadline_in=600, purpose=b"download"):
    return Voucher(licence_id, nonce, chain_time(gm.w3) + deadline_in, purpose.ljust(32, b"\0"))


def test_fee_rounding_is_exact_for_every_price(gm, member, market):
    pub, as_pub, _, _, product = market
    fee_recipient = gm.licensing._call("feeRecipient")
    for price in range(10, 51):
        buyer, as_buyer = member(Role.SUBSCRIBER)
        as_pub.licensing.set_plan(product, PlanKind.WEEK, price)
        before = [gm.points.balance_of(a) for a in (buyer.address, pub.address, fee_recipient)]
        supply = gm.points.total_supply()
        as_buyer.licensing.purchase(product, PlanKind.WEEK)
        after = [gm.points.balance_of(a) for a in (buyer.address, pub.address, fee_recipient)]
        fee = (price * 6 + 50) // 100  # round half up
        assert before[0] - after[0] == price
        assert after[1] - before[1] == price - fee
        assert after[2] - before[2] == fee
        assert gm.points.total_supply() == supply  # a sale mints nothing
    assert gm.licensing.fee_for(30) == 2 and gm.licensing.fee_for(25) == 2 and gm.licensing.fee_for(10) == 1


def test_plan_rules(gm, member, market):
    pub, as_pub, sub, as_sub, product = market
    with pytest.raises(ContractRevert) as err:
        as_pub.licensing.set_plan(product, PlanKind.MONTH, 51)
    assert err.value.error_name == "PriceOutOfRange"
    with pytest.raises(ContractRevert) as err:
        as_pub.licensing.set_plan(product, PlanKind.MONTH, 9)
    assert err.value.error_name == "PriceOutOfRange"
    with pytest.raises(ContractRevert) as err:
        as_pub.licensing.set_plan(product, PlanKind.PER_USE, 20, 0)
    assert err.value.error_name == "InvalidPlan"
    with pytest.raises(ContractRevert) as err:
        as_sub.licensing.set_plan(product, PlanKind.MONTH, 20)
    assert err.value.error_name == "NotProductPublisher"
    with pytest.raises(ContractRevert) as err:
        as_sub.licensing.purchase(product, PlanKind.YEAR)
    assert err.value.error_name == "PlanNotOffered"
    with pytest.raises(ContractRevert) as err:
        as_pub.licensing.set_price_bounds(5, 60)
    assert err.value.error_name == "AccessControlUnauthorizedAccount"


def test_operator_configures_price_bounds(gm, market, snapshot):
    _, as_pub, _, _, product = market
    gm.licensing.set_price_bounds(5, 80)
    as_pub.licensing.set_plan(product, PlanKind.YEAR, 80)
    assert gm.licensing.plan(product, PlanKind.YEAR) == (80, 0)
    with pytest.raises(ContractRevert) as err:
        gm.licensing.set_price_bounds(50, 10)
    assert err.value.error_name == "InvalidBounds"


def test_per_use_licence_is_exhausted_and_vouchers_never_replay(gm, member, market):
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.PER_USE, 30, 3)
    licence_id, _ = as_sub.licensing.purchase(product, PlanKind.PER_USE)
    assert licence_id == gm.licensing.licence_id_of(product, sub.address)
    assert gm.points.balance_of(sub.address) == 470
    relayer = gm  # the delivery service submits vouchers: the operator key holds REDEEMER_ROLE
    for n, left in zip(range(3), (2, 1, 0)):
        v = voucher(gm, licence_id, n)
        receipt = relayer.licensing.redeem(v, as_sub.licensing.sign_voucher(sub, v))
        assert gm.licensing.events(receipt, "Redeemed")[0]["usesLeft"] == left
    assert not gm.licensing.is_authorized(sub.address, product)
    v = voucher(gm, licence_id, 3)
    with pytest.raises(ContractRevert) as err:
        relayer.licensing.redeem(v, as_sub.licensing.sign_voucher(sub, v))
    assert err.value.error_name == "NotAuthorized"
    as_sub.licensing.purchase(product, PlanKind.PER_USE)  # a repeat purchase adds uses
    assert gm.licensing.licence(licence_id).uses_left == 3
    v0 = voucher(gm, licence_id, 0)
    with pytest.raises(ContractRevert) as err:
        relayer.licensing.redeem(v0, as_sub.licensing.sign_voucher(sub, v0))
    assert err.value.error_name == "NonceAlreadyUsed"
    assert gm.licensing.nonce_used(sub.address, 2) and not gm.licensing.nonce_used(sub.address, 3)


def test_only_the_holder_can_sign_a_voucher(gm, member, market):
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.PER_USE, 10, 1)
    licence_id, _ = as_sub.licensing.purchase(product, PlanKind.PER_USE)
    thief = Account.create()
    v = voucher(gm, licence_id, 7)
    with pytest.raises(ContractRevert) as err:
        gm.licensing.redeem(v, gm.licensing.sign_voucher(thief, v))
    assert err.value.error_name == "InvalidSignature"
    expired = voucher(gm, licence_id, 8, deadline_in=-5)
    with pytest.raises(ContractRevert) as err:
        gm.licensing.redeem(expired, as_sub.licensing.sign_voucher(sub, expired))
    assert err.value.error_name == "ExpiredSignature"
    with pytest.raises(ContractRevert) as err:
        gm.licensing.redeem(voucher(gm, 12345, 1), b"\x00" * 65)
    assert err.value.error_name == "UnknownLicence"


def test_time_plans_expire_and_extend(time_machine):
    gm, member = time_machine
    pub, as_pub = member(Role.PUBLISHER)
    sub, as_sub = member(Role.SUBSCRIBER)
    product = publish(gm, pub)
    as_pub.licensing.set_plan(product, PlanKind.WEEK, 10)
    licence_id, _ = as_sub.licensing.purchase(product, PlanKind.WEEK)
    first_expiry = gm.licensing.licence(licence_id).expires_at
    assert first_expiry - chain_time(gm.w3) <= 7 * 86400
    as_sub.licensing.purchase(product, PlanKind.WEEK)  # extends from the current expiry
    assert gm.licensing.licence(licence_id).expires_at == first_expiry + 7 * 86400
    for n in range(3):  # time plans are not consumed by redemption
        v = voucher(gm, licence_id, 100 + n)
        gm.licensing.redeem(v, as_sub.licensing.sign_voucher(sub, v))
    assert gm.licensing.is_authorized(sub.address, product)
    increase_time(gm.w3, 14 * 86400 + 1)
    assert not gm.licensing.is_authorized(sub.address, product)
    v = voucher(gm, licence_id, 200)
    with pytest.raises(ContractRevert) as err:
        gm.licensing.redeem(v, as_sub.licensing.sign_voucher(sub, v))
    assert err.value.error_name == "NotAuthorized"


def test_off_shelf_cannot_be_bought_but_sold_licences_stay_valid(gm, member, market):
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.MONTH, 25)
    as_sub.licensing.purchase(product, PlanKind.MONTH)
    gm.products.withdraw(product)
    late, as_late = member(Role.SUBSCRIBER)
    with pytest.raises(ContractRevert) as err:
        as_late.licensing.purchase(product, PlanKind.MONTH)
    assert err.value.error_name == "NotOnShelf"
    assert gm.points.balance_of(late.address) == 500
    assert gm.licensing.is_authorized(sub.address, product)
    # a pending new version takes the product off sale until it is approved
    v2 = publish(gm, pub, previous=product, approve=False)
    gm.products.approve(product)
    with pytest.raises(ContractRevert):
        as_late.licensing.purchase(product, PlanKind.MONTH)
    gm.products.approve(v2)
    as_late.licensing.purchase(product, PlanKind.MONTH)


def test_too_few_points(gm, member, market):
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.YEAR, 50)
    for _ in range(10):
        as_sub.licensing.purchase(product, PlanKind.YEAR)
    assert gm.points.balance_of(sub.address) == 0
    with pytest.raises(ContractRevert) as err:
        as_sub.licensing.purchase(product, PlanKind.YEAR)
    assert err.value.error_name == "InsufficientPoints"


def test_revocation_by_operator_only(gm, member, market):
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.YEAR, 40)
    licence_id, _ = as_sub.licensing.purchase(product, PlanKind.YEAR)
    with pytest.raises(ContractRevert) as err:
        as_pub.licensing.revoke(licence_id, "mine")
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    receipt = gm.licensing.revoke(licence_id, "member suspended")
    assert gm.licensing.events(receipt, "LicenceRevoked")[0]["reason"] == "member suspended"
    assert not gm.licensing.is_authorized(sub.address, product)


def test_points_are_conserved_over_1000_random_operations(gm, member):
    rng = random.Random(20261122)
    fee_recipient = gm.licensing._call("feeRecipient")
    units = [member(Role.PUBLISHER | Role.SUBSCRIBER) for _ in range(6)]
    products = {}
    for acct, client in units[:3]:
        pid = publish(gm, acct)
        client.licensing.set_plan(pid, PlanKind.PER_USE, rng.randint(10, 50), rng.randint(1, 5))
        client.licensing.set_plan(pid, PlanKind.MONTH, rng.randint(10, 50))
        products[pid] = acct.address
    accounts = {a.address for a, _ in units} | {fee_recipient}
    expected = {a: gm.points.balance_of(a) for a in accounts}
    supply = gm.points.total_supply()
    nonces = {a.address: 10_000 for a, _ in units}
    ok = refused = 0
    for _ in range(1000):
        acct, client = rng.choice(units)
        pid = rng.choice(list(products))
        if rng.random() < 0.7:
            kind = rng.choice([PlanKind.PER_USE, PlanKind.MONTH])
            price = gm.licensing.plan(pid, kind)[0]
            try:
                client.licensing.purchase(pid, kind)
            except ContractRevert as exc:
                if products[pid] == acct.address:
                    assert exc.error_name == "OwnProduct"
                else:
                    assert exc.error_name == "InsufficientPoints" and expected[acct.address] < price
                refused += 1
                continue
            assert products[pid] != acct.address  # no wash sales
            fee = (price * 600 + 5000) // 10000
            expected[acct.address] -= price
            expected[products[pid]] += price - fee
            expected[fee_recipient] += fee
            ok += 1
        else:
            lid = gm.licensing.licence_id_of(pid, acct.address)
            nonces[acct.address] += 1
            v = voucher(gm, lid, nonces[acct.address])
            try:
                gm.licensing.redeem(v, client.licensing.sign_voucher(acct, v))
            except ContractRevert as exc:
                assert exc.error_name in {"UnknownLicence", "NotAuthorized"}
    for a in accounts:
        assert gm.points.balance_of(a) == expected[a], a
    assert gm.points.total_supply() == supply
    assert ok > 100 and refused > 0


def test_reverts_with_fixed_gas_surface_the_custom_error(gm, member, market):
    """Hot paths skip gas estimation; the node then mines the revert and the error must still be named."""
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.PER_USE, 10, 2)
    licence_id, _ = as_sub.licensing.purchase(product, PlanKind.PER_USE)
    v = voucher(gm, licence_id, 1)
    sig = as_sub.licensing.sign_voucher(sub, v)
    gm.licensing.redeem(v, sig, gas=150_000)
    with pytest.raises(ContractRevert) as err:
        gm.licensing.redeem(v, sig, gas=150_000)
    assert err.value.error_name == "NonceAlreadyUsed"
    v2 = voucher(gm, licence_id, 2)  # the sender's nonce tracking survived the mined revert
    gm.licensing.redeem(v2, as_sub.licensing.sign_voucher(sub, v2), gas=150_000)
    assert gm.licensing.licence(licence_id).uses_left == 0


def test_only_the_service_submits_vouchers(gm, member, market):
    """A voucher is public once signed; only REDEEMER_ROLE (the service) may spend it on chain."""
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.PER_USE, 10, 2)
    licence_id, _ = as_sub.licensing.purchase(product, PlanKind.PER_USE)
    v = voucher(gm, licence_id, 1)
    sig = as_sub.licensing.sign_voucher(sub, v)
    _, as_other = member(Role.SUBSCRIBER)
    as_stranger = gm.as_account(Account.create())
    redeemer = gm.licensing._call("REDEEMER_ROLE")
    for name, client in (("holder", as_sub), ("publisher", as_pub), ("member", as_other), ("stranger", as_stranger)):
        with pytest.raises(ContractRevert) as err:
            client.licensing.redeem(v, sig)
        assert err.value.error_name == "AccessControlUnauthorizedAccount", name
        assert err.value.error_args[1] == redeemer.hex()
    assert not gm.licensing.nonce_used(sub.address, 1)
    assert gm.licensing.licence(licence_id).uses_left == 2
    gm.licensing.redeem(v, sig)  # the service's relay still works
    assert gm.licensing.nonce_used(sub.address, 1) and gm.licensing.licence(licence_id).uses_left == 1


def test_a_publisher_cannot_buy_its_own_product(gm, member):
    unit, as_unit = member(Role.PUBLISHER | Role.SUBSCRIBER)
    product = publish(gm, unit)
    as_unit.licensing.set_plan(product, PlanKind.MONTH, 20)
    with pytest.raises(ContractRevert) as err:
        as_unit.licensing.purchase(product, PlanKind.MONTH)
    assert err.value.error_name == "OwnProduct" and err.value.error_args == (product,)
    assert gm.points.balance_of(unit.address) == 500


def test_a_suspended_publisher_is_neither_paid_nor_prices(gm, member, market):
    pub, as_pub, sub, as_sub, product = market
    as_pub.licensing.set_plan(product, PlanKind.MONTH, 20)
    gm.members.suspend(pub.address, "audit")
    with pytest.raises(ContractRevert) as err:
        as_sub.licensing.purchase(product, PlanKind.MONTH)
    assert err.value.error_name == "PublisherNotActive"
    assert err.value.error_args == (product, pub.address.lower())
    with pytest.raises(ContractRevert) as err:
        as_pub.licensing.set_plan(product, PlanKind.YEAR, 30)
    assert err.value.error_name == "PublisherNotActive"
    assert gm.points.balance_of(pub.address) == 500 and gm.points.balance_of(sub.address) == 500
    gm.members.reinstate(pub.address)
    as_sub.licensing.purchase(product, PlanKind.MONTH)
    assert gm.points.balance_of(pub.address) == 500 + 20 - 1
    gm.members.set_roles(pub.address, Role.SUBSCRIBER)  # no longer a publisher: not paid either
    with pytest.raises(ContractRevert) as err:
        as_sub.licensing.purchase(product, PlanKind.MONTH)
    assert err.value.error_name == "PublisherNotActive"
