"""Unauthorized calls to every state-changing contract function (#21 item 6), on the session chain.

The functions come from the deployed contracts' ABIs, so a new function fails this test until it
has a case here. Each case is a well-formed call aimed at someone else's resource (a victim
publisher's product, a victim's task, a role, a scheduled admin action), made by an anonymous
account, by an ordinary member (publisher + subscriber), and by the service's own key where it is
not the service's job; each must revert with the authorization error named, so a call refused for
a malformed argument instead does not count."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_node.contracts import GridMart, Kind, Listing, PlanKind, Role, Voucher
from ledger_node.deploy import DEVNET_COUNCIL, DEVNET_PASSWORD
from ledger_node.errors import ContractRevert
from ledger_node.wallets import load_wallet
from tests.chain.helpers import chain_time, publish

ACL = "AccessControlUnauthorizedAccount"
CALLERS = ("anonymous", "member", "service")
#: accept anything and change nothing (token-receiver hooks): nothing to authorize
NO_STATE = {("GridMartTimelock", "onERC721Received"), ("GridMartTimelock", "onERC1155Received"),
            ("GridMartTimelock", "onERC1155BatchReceived")}


@dataclass
class World:
    """A victim publisher's products, plans, licence, FL task and a pending council proposal."""

    gm: GridMart
    victim: LocalAccount
    tool: int
    data: int
    licence_id: int
    voucher: Voucher
    signature: bytes
    task_id: int
    proposal: bytes
    partner: str
    anyone: str

    def roles(self, client) -> list[bytes]:
        return [client._call(i["name"]) for i in client.contract.abi
                if i["type"] == "function" and i["name"].endswith("_ROLE") and not i["inputs"]]


@dataclass(frozen=True)
class Case:
    """Argument tuples of one function, the errors that mean "refused", and who is tried."""

    args: Callable[[World, Any], list[tuple]]
    errors: frozenset[str]
    callers: tuple[str, ...] = CALLERS
    why: str = ""


def case(args, *errors: str, callers: tuple[str, ...] = CALLERS, why: str = "") -> Case:
    return Case(args, frozenset(errors), callers, why)


NOT_SERVICE = ("anonymous", "member")  # the service's job: only others are tried
ROLE_ADMIN = {
    "grantRole": case(lambda w, c: [(r, a) for r in w.roles(c) for a in (w.anyone, w.gm.account.address)], ACL),
    "revokeRole": case(lambda w, c: [(r, w.gm.account.address) for r in w.roles(c)], ACL),
    "renounceRole": case(lambda w, c: [(r, w.gm.timelock.address) for r in w.roles(c)],
                         "AccessControlBadConfirmation", why="only for oneself: someone else's role cannot be renounced"),
}


def _listing(w: World) -> tuple:
    payload = os.urandom(32)
    return Listing(Kind.DATA, b"\x01\x55\x12\x20" + hashlib.sha256(payload).digest(), hashlib.sha256(payload).digest(),
                   b"\x22" * 32, 0, w.gm.products.nonce(w.victim.address), chain_time(w.gm.w3) + 600).as_tuple()


def _scheduled(w: World) -> tuple:
    """A well-formed admin operation (the fee to `anyone`), not scheduled by the council."""
    return (w.gm.licensing.address, 0, w.gm.licensing.encode("setFeeRecipient", w.anyone), b"\0" * 32, b"\1" * 32)


CASES: dict[str, dict[str, Case]] = {
    "Points": {
        **ROLE_ADMIN,
        "grantAdmission": case(lambda w, c: [(w.anyone,)], ACL),
        "move": case(lambda w, c: [(w.victim.address, w.anyone, 10)], ACL),
        "settle": case(lambda w, c: [(w.victim.address, w.anyone, w.anyone, 10, 1)], ACL),
    },
    "MemberRegistry": {
        **ROLE_ADMIN,
        "admit": case(lambda w, c: [(w.anyone, "sybil", b"\x01" * 32, 3)], ACL, callers=NOT_SERVICE),
        "setRoles": case(lambda w, c: [(w.victim.address, 7)], ACL, callers=NOT_SERVICE),
        "suspend": case(lambda w, c: [(w.victim.address, "grudge")], ACL, callers=NOT_SERVICE),
        "reinstate": case(lambda w, c: [(w.victim.address,)], ACL, callers=NOT_SERVICE),
    },
    "ProductRegistry": {
        **ROLE_ADMIN,
        "register": case(lambda w, c: [(_listing(w), w.victim.address, b"\x1b" * 65)], "InvalidSignature",
                         why="anyone may submit; the victim's listing needs the victim's signature"),
        "approve": case(lambda w, c: [(w.data,)], ACL, callers=NOT_SERVICE),
        "withdraw": case(lambda w, c: [(w.data,)], "Unauthorized", callers=NOT_SERVICE),
    },
    "Licensing": {
        **ROLE_ADMIN,
        "setPlan": case(lambda w, c: [(w.data, int(PlanKind.YEAR), 20, 0)], "NotProductPublisher"),
        "purchase": case(lambda w, c: [(w.data, int(PlanKind.MONTH))], "NotSubscriber", callers=("anonymous", "service"),
                         why="a subscriber's own purchase is its job: it pays from msg.sender only"),
        "redeem": case(lambda w, c: [(w.voucher.as_tuple(), w.signature)], ACL, callers=NOT_SERVICE),
        "revoke": case(lambda w, c: [(w.licence_id, "grudge")], ACL, callers=NOT_SERVICE),
        "setPriceBounds": case(lambda w, c: [(1, 60000)], ACL, callers=NOT_SERVICE),
        "setFeeRecipient": case(lambda w, c: [(w.anyone,)], ACL),
    },
    "FederatedRegistry": {
        **ROLE_ADMIN,
        "openTask": case(lambda w, c: [(w.tool, 0, b"\x01" * 32, b"")], "NotToolPublisher"),
        "openTaskFor": case(lambda w, c: [(w.victim.address, w.tool, b"\x01" * 32, b"")], ACL, callers=NOT_SERVICE),
        "fundTask": case(lambda w, c: [(w.task_id, 1)], "Unauthorized"),
        "join": case(lambda w, c: [(w.task_id,)], "NotActiveMember", callers=("anonymous", "service"),
                     why="any active member may join a task as itself"),
        "addPartner": case(lambda w, c: [(w.task_id, w.anyone)], ACL, callers=NOT_SERVICE),
        "recordRound": case(lambda w, c: [(w.task_id, 1, b"\x01" * 36, [w.partner], [10], [10_000])], ACL,
                            callers=NOT_SERVICE),
        "finalize": case(lambda w, c: [(w.task_id, w.tool)], "Unauthorized", callers=NOT_SERVICE),
    },
    "UsageAnchor": {
        **ROLE_ADMIN,
        "anchor": case(lambda w, c: [(b"\x01" * 32, 10, 1, 2)], ACL, callers=NOT_SERVICE),
    },
    "GridMartTimelock": {
        **ROLE_ADMIN,
        "schedule": case(lambda w, c: [(*_scheduled(w), 86_400)], ACL),
        "scheduleBatch": case(lambda w, c: [tuple([x] for x in _scheduled(w)[:3]) + _scheduled(w)[3:] + (86_400,)],
                              ACL),
        "cancel": case(lambda w, c: [(w.proposal,)], ACL),
        "execute": case(lambda w, c: [_scheduled(w)], "TimelockUnexpectedOperationState",
                        why="anyone executes, but only what the council scheduled and the delay released"),
        "executeBatch": case(lambda w, c: [tuple([x] for x in _scheduled(w)[:3]) + _scheduled(w)[3:]],
                             "TimelockUnexpectedOperationState"),
        "updateDelay": case(lambda w, c: [(0,)], "TimelockUnauthorizedCaller"),
    },
    "ConsortiumCouncil": {
        "propose": case(lambda w, c: [_scheduled(w)[:3] + (os.urandom(32),)], "NotCouncilMember"),
        "approve": case(lambda w, c: [(w.proposal,)], "NotCouncilMember"),
        "cancel": case(lambda w, c: [(w.proposal,)], "NotCouncilMember"),
        "execute": case(lambda w, c: [(w.proposal,)], "NotScheduled",
                        why="anyone executes, once the council's threshold scheduled it and the delay is over"),
        "addMember": case(lambda w, c: [(w.anyone,)], "OnlyTimelock"),
        "removeMember": case(lambda w, c: [(w.gm.council.members()[0],)], "OnlyTimelock"),
        "setThreshold": case(lambda w, c: [(1,)], "OnlyTimelock"),
    },
}


@pytest.fixture(scope="module")
def world(gm, member) -> World:
    victim, as_victim = member(Role.PUBLISHER | Role.SUBSCRIBER, name="victim")
    tool = publish(gm, victim, kind=Kind.TOOL)
    data = publish(gm, victim)
    as_victim.licensing.set_plan(data, PlanKind.MONTH, 20)
    buyer, as_buyer = member(Role.SUBSCRIBER, name="buyer")
    licence_id, _ = as_buyer.licensing.purchase(data, PlanKind.MONTH)
    voucher = Voucher(licence_id, int.from_bytes(os.urandom(8)), chain_time(gm.w3) + 3600, b"download".ljust(32, b"\0"))
    task_id, _ = as_victim.federated.open_task(tool, 10, b"\x02" * 32)
    partner, as_partner = member(Role.SUBSCRIBER, name="partner")
    as_partner.federated.join(task_id)
    council = gm.as_account(load_wallet(DEVNET_COUNCIL[0], DEVNET_PASSWORD))  # the session's devnet council
    proposal, _ = council.council.propose(gm.licensing.address, gm.licensing.encode("setFeeRecipient", victim.address),
                                          salt=os.urandom(32))
    return World(gm, victim, tool, data, licence_id, voucher, gm.licensing.sign_voucher(buyer, voucher), task_id,
                 proposal, partner.address, Account.create().address)


@pytest.fixture(scope="module")
def member(gm):
    """Module-scoped twin of tests/conftest.py's `member` factory."""
    def make(roles: Role, name: str = "unit") -> tuple[LocalAccount, GridMart]:
        account = Account.create()
        gm.members.admit(account.address, name, b"\x11" * 32, roles)
        return account, gm.as_account(account)
    return make


def _state_changing(client) -> list[str]:
    return sorted(i["name"] for i in client.contract.abi
                  if i["type"] == "function" and i["stateMutability"] in ("nonpayable", "payable"))


def test_every_state_changing_function_is_covered(gm):
    missing = [f"{c.name}.{fn}" for c in gm.contracts() for fn in _state_changing(c)
               if fn not in CASES.get(c.name, {}) and (c.name, fn) not in NO_STATE]
    assert not missing, f"state-changing functions without an access case: {missing}"
    assert {c.name for c in gm.contracts()} == set(CASES)


def test_no_unauthorized_call_is_accepted(gm, member, world, record_property):
    attacker, as_attacker = member(Role.PUBLISHER | Role.SUBSCRIBER, name="attacker")
    callers = {"anonymous": gm.as_account(Account.create()), "member": as_attacker, "service": gm}
    accepted, wrong_reason, tried = [], [], 0
    for client in gm.contracts():
        for fn in _state_changing(client):
            if (client.name, fn) in NO_STATE:
                continue
            spec = CASES[client.name][fn]
            for args in spec.args(world, client):
                for who in spec.callers:
                    caller = callers[who]
                    bound = getattr(getattr(caller, _attr(client)).contract.functions, fn)(*args)
                    tried += 1
                    try:
                        caller.sender.send(bound)
                    except ContractRevert as exc:
                        if exc.error_name not in spec.errors:
                            wrong_reason.append(f"{client.name}.{fn} by {who}: {exc.error_name}")
                        continue
                    accepted.append(f"{client.name}.{fn}{args} by {who}")
    print(f"\ncontract access: {tried} unauthorized calls, {len(accepted)} accepted")
    record_property("unauthorized_calls", tried)
    record_property("accepted", len(accepted))
    assert not accepted
    assert not wrong_reason, wrong_reason
    assert tried >= 150


def _attr(client) -> str:
    names = {"Points": "points", "MemberRegistry": "members", "ProductRegistry": "products", "Licensing": "licensing",
             "FederatedRegistry": "federated", "UsageAnchor": "usage", "GridMartTimelock": "timelock",
             "ConsortiumCouncil": "council"}
    return names[client.name]
