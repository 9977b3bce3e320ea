"""MemberRegistry and Points on the real Hardhat node."""
from __future__ import annotations

import pytest
from eth_account import Account

from ledger_node.contracts import MemberStatus, PlanKind, Role
from ledger_node.errors import ContractRevert

from .helpers import publish


def test_admission_grants_500_points_once(gm):
    unit = Account.create()
    supply = gm.points.total_supply()
    receipt = gm.members.admit(unit.address, "Jiangsu Electric", b"\x01" * 32, Role.PUBLISHER | Role.AUDITOR)
    assert gm.points.balance_of(unit.address) == 500
    assert gm.points.total_supply() == supply + 500
    assert gm.points.admission_granted(unit.address)
    member = gm.members.member(unit.address)
    assert member.status is MemberStatus.ACTIVE and member.roles == Role.PUBLISHER | Role.AUDITOR
    assert member.identity_hash == b"\x01" * 32
    (event,) = gm.members.events(receipt, "MemberAdmitted")
    assert event["name"] == "Jiangsu Electric"

    with pytest.raises(ContractRevert) as err:
        gm.members.admit(unit.address, "again", b"\x02" * 32, Role.SUBSCRIBER)
    assert err.value.error_name == "AlreadyMember"
    assert gm.points.balance_of(unit.address) == 500
    assert gm.points.total_supply() == supply + 500


def test_only_the_registry_grants_admission_points(gm):
    # even the operator (admin of Points) cannot mint directly: only REGISTRAR_ROLE
    with pytest.raises(ContractRevert) as err:
        gm.sender.send(gm.points.contract.functions.grantAdmission(Account.create().address))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"


def test_admission_by_non_operator_is_rejected(gm, member):
    _, as_member = member()
    stranger = Account.create().address
    with pytest.raises(ContractRevert) as err:
        as_member.members.admit(stranger, "rogue", b"\x00" * 32, Role.SUBSCRIBER)
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    assert gm.points.balance_of(stranger) == 0


def test_invalid_roles_and_unknown_members(gm):
    with pytest.raises(ContractRevert) as err:
        gm.members.admit(Account.create().address, "x", b"\x00" * 32, Role(8))
    assert err.value.error_name == "InvalidRoles"
    with pytest.raises(ContractRevert) as err:
        gm.members.suspend(Account.create().address, "no such unit")
    assert err.value.error_name == "NotMember"


def test_points_cannot_move_outside_gridmart_contracts(gm, member):
    a, as_a = member()
    b, _ = member()
    abi_names = {item.get("name") for item in gm.points.contract.abi}
    assert not {"transfer", "transferFrom", "approve"} & abi_names  # no plain transfer exists
    for client in (as_a, gm):  # neither a member nor the operator may move points
        with pytest.raises(ContractRevert) as err:
            client.sender.send(client.points.contract.functions.move(a.address, b.address, 10))
        assert err.value.error_name == "AccessControlUnauthorizedAccount"
        with pytest.raises(ContractRevert):
            client.sender.send(client.points.contract.functions.settle(a.address, b.address, b.address, 10, 1))
    assert gm.points.balance_of(a.address) == 500 and gm.points.balance_of(b.address) == 500


def test_suspended_member_cannot_act_until_reinstated(gm, member):
    pub, as_pub = member(Role.PUBLISHER)
    sub, as_sub = member(Role.SUBSCRIBER)
    product = publish(gm, pub)
    as_pub.licensing.set_plan(product, PlanKind.MONTH, 20)

    gm.members.suspend(sub.address, "overdue identity check")
    assert gm.members.member(sub.address).status is MemberStatus.SUSPENDED
    with pytest.raises(ContractRevert) as err:
        as_sub.licensing.purchase(product, PlanKind.MONTH)
    assert err.value.error_name == "NotSubscriber"
    with pytest.raises(ContractRevert) as err:
        gm.members.suspend(sub.address, "twice")
    assert err.value.error_name == "InvalidStatus"

    gm.members.suspend(pub.address, "audit")
    with pytest.raises(ContractRevert) as err:
        publish(gm, pub)
    assert err.value.error_name == "NotPublisher"

    gm.members.reinstate(sub.address)
    gm.members.reinstate(pub.address)
    licence_id, _ = as_sub.licensing.purchase(product, PlanKind.MONTH)
    assert gm.licensing.is_authorized(sub.address, product)
    assert gm.points.balance_of(sub.address) == 480


def test_roles_are_enforced_and_replaceable(gm, member):
    sub, as_sub = member(Role.SUBSCRIBER)
    with pytest.raises(ContractRevert) as err:
        publish(gm, sub)
    assert err.value.error_name == "NotPublisher"
    gm.members.set_roles(sub.address, Role.SUBSCRIBER | Role.PUBLISHER)
    assert publish(gm, sub) > 0
