"""The operator key's powers split (#21 item 7): the service key does its job and no more;
admin actions need M of N council members and wait out the timelock's delay.

One devnet for the module (the tests move its clock, which survives evm_revert); each test
proposes with its own salt, so the order of the tests does not matter."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from eth_account import Account

from ledger_node.chain import connect
from ledger_node.compiler import CONTRACT_NAMES
from ledger_node.config import get_settings
from ledger_node.contracts import GridMart, ProposalStatus, Role
from ledger_node.deploy import deploy
from ledger_node.devnet import Devnet, free_port
from ledger_node.errors import ConfigError, ContractRevert

from .helpers import increase_time

DELAY = 86_400

#: what the service's key must hold, per contract: exactly its day-to-day roles
SERVICE_ROLES = {
    "MemberRegistry": {"OPERATOR_ROLE"},
    "ProductRegistry": {"OPERATOR_ROLE"},
    "Licensing": {"OPERATOR_ROLE", "REDEEMER_ROLE"},
    "FederatedRegistry": {"COORDINATOR_ROLE"},
    "UsageAnchor": {"ANCHOR_ROLE"},
    "Points": set(),
    "GridMartTimelock": set(),
}


@pytest.fixture(scope="module")
def gov(tmp_path_factory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("governance")
    net = Devnet(port=free_port(), workdir=get_settings().home / f"devnet-{folder.name}").start()
    try:
        w3 = connect(net.url)
        operator = Account.create()
        council = [Account.create() for _ in range(3)]
        book, _ = deploy(w3, operator, directory=folder, council=[c.address for c in council], threshold=2, delay=DELAY)
        gm = GridMart(w3, book, operator)
        yield {"gm": gm, "council": [gm.as_account(c) for c in council], "w3": w3, "folder": folder}
    finally:
        net.stop()


def _roles(client) -> list[str]:
    return [i["name"] for i in client.contract.abi
            if i["type"] == "function" and i["name"].endswith("_ROLE") and not i["inputs"]]


def _reverts(fn, *args, error: str | None = None) -> ContractRevert:
    with pytest.raises(ContractRevert) as err:
        fn(*args)
    if error is not None:
        assert err.value.error_name == error, err.value
    return err.value


def test_the_service_key_holds_only_its_day_to_day_roles(gov):
    gm = gov["gm"]
    op = gm.account.address
    for client in gm.contracts():
        if client.name == "ConsortiumCouncil":
            continue  # no roles: membership only
        held = {role for role in _roles(client) if client.has_role(role, op)}
        assert held == SERVICE_ROLES[client.name], client.name
        assert client.has_role("DEFAULT_ADMIN_ROLE", gm.timelock.address) or client.name == "GridMartTimelock"
    assert gm.timelock.has_role("DEFAULT_ADMIN_ROLE", gm.timelock.address)  # self-administered
    assert not gm.council.is_member(op)
    assert gm.book.council == gm.council.members() and gm.book.admin_delay == gm.timelock.min_delay() == DELAY


def test_the_service_key_cannot_grant_roles_move_points_mint_or_change_the_fee_recipient(gov):
    gm = gov["gm"]
    op = gm.account.address
    send = gm.sender.send
    for client in gm.contracts():
        if client.name == "ConsortiumCouncil":
            continue
        for role in _roles(client):  # not even the roles it holds, to itself or to another key
            for grantee in (op, Account.create().address):
                err = _reverts(send, client.contract.functions.grantRole(client._call(role), grantee))
                assert err.error_name == "AccessControlUnauthorizedAccount", (client.name, role)
    a, b = Account.create().address, Account.create().address
    gm.members.admit(a, "unit", b"\x11" * 32, Role.SUBSCRIBER)
    points = gm.points.contract.functions
    _reverts(send, points.move(a, b, 10), error="AccessControlUnauthorizedAccount")
    _reverts(send, points.settle(a, op, op, 10, 1), error="AccessControlUnauthorizedAccount")
    _reverts(send, points.grantAdmission(op), error="AccessControlUnauthorizedAccount")
    _reverts(send, gm.licensing.contract.functions.setFeeRecipient(op), error="AccessControlUnauthorizedAccount")
    timelock = gm.timelock.contract.functions
    data = gm.licensing.encode("setFeeRecipient", op)
    _reverts(send, timelock.schedule(gm.licensing.address, 0, data, b"\0" * 32, b"\0" * 32, DELAY),
             error="AccessControlUnauthorizedAccount")
    _reverts(send, timelock.updateDelay(0), error="TimelockUnauthorizedCaller")
    _reverts(gm.council.propose, gm.licensing.address, data, error="NotCouncilMember")
    assert gm.points.balance_of(a) == 500 and gm.points.balance_of(b) == 0


def test_a_proposal_runs_only_at_threshold_and_after_the_delay(gov):
    gm, (c1, c2, c3) = gov["gm"], gov["council"]
    recipient = Account.create().address
    before = gm.licensing._call("feeRecipient")
    data = gm.licensing.encode("setFeeRecipient", recipient)
    pid, _ = c1.council.propose(gm.licensing.address, data, salt=os.urandom(32))
    assert gm.council.status(pid) is ProposalStatus.PENDING and gm.council.proposal(pid)["approvals"] == 1
    assert gm.timelock.ready_at(pid) == 0  # below threshold nothing is scheduled
    _reverts(c1.council.approve, pid, error="AlreadyApproved")  # one member, one approval
    _reverts(gm.as_account(Account.create()).council.execute, pid, error="NotScheduled")
    receipt = c3.council.approve(pid)
    assert gm.council.events(receipt, "Scheduled")[0]["id"] == pid
    assert gm.council.status(pid) is ProposalStatus.WAITING
    _reverts(c2.council.approve, pid, error="NotPending")
    stranger = gm.as_account(Account.create())
    _reverts(stranger.council.execute, pid, error="TimelockUnexpectedOperationState")
    increase_time(gov["w3"], DELAY - 120)
    _reverts(stranger.council.execute, pid, error="TimelockUnexpectedOperationState")
    assert gm.licensing._call("feeRecipient") == before
    increase_time(gov["w3"], 121)
    assert gm.council.status(pid) is ProposalStatus.READY
    stranger.council.execute(pid)  # anyone may execute once it is ready
    assert gm.licensing._call("feeRecipient") == recipient
    assert gm.council.status(pid) is ProposalStatus.EXECUTED
    _reverts(stranger.council.execute, pid, error="TimelockUnexpectedOperationState")  # once


def test_the_council_rotates_the_service_key(gov):
    """Granting and revoking a role goes through the council, e.g. moving OPERATOR_ROLE to a new key."""
    gm, (c1, c2, _) = gov["gm"], gov["council"]
    new_key = Account.create()
    role = gm.members._call("OPERATOR_ROLE")
    grant, _ = c1.council.propose(gm.members.address, gm.members.encode("grantRole", role, new_key.address),
                                  salt=os.urandom(32))
    revoke, _ = c2.council.propose(gm.members.address, gm.members.encode("revokeRole", role, gm.account.address),
                                   salt=os.urandom(32))
    c2.council.approve(grant)
    c1.council.approve(revoke)
    increase_time(gov["w3"], DELAY + 1)
    gm.council.execute(grant)
    gm.council.execute(revoke)
    as_new = gm.as_account(new_key)
    as_new.members.admit(Account.create().address, "unit", b"\x22" * 32, Role.SUBSCRIBER)
    _reverts(gm.members.admit, Account.create().address, "unit", b"\x22" * 32, Role.SUBSCRIBER,
             error="AccessControlUnauthorizedAccount")
    # and back, so the other tests keep an operator
    back, _ = c1.council.propose(gm.members.address, gm.members.encode("grantRole", role, gm.account.address),
                                 salt=os.urandom(32))
    c2.council.approve(back)
    increase_time(gov["w3"], DELAY + 1)
    gm.council.execute(back)
    assert gm.members.has_role("OPERATOR_ROLE", gm.account.address)


def test_outsiders_cannot_propose_approve_or_cancel(gov):
    gm, (c1, _, _) = gov["gm"], gov["council"]
    pid, _ = c1.council.propose(gm.licensing.address, gm.licensing.encode("setFeeRecipient", c1.account.address),
                                salt=os.urandom(32))
    for outsider in (gm, gm.as_account(Account.create())):
        _reverts(outsider.council.propose, gm.licensing.address, b"", error="NotCouncilMember")
        _reverts(outsider.council.approve, pid, error="NotCouncilMember")
        _reverts(outsider.council.cancel, pid, error="NotCouncilMember")
    for fn, args in ((c1.sender.send, (gm.council.contract.functions.addMember(c1.account.address),)),
                     (gm.sender.send, (gm.council.contract.functions.setThreshold(1),))):
        _reverts(fn, *args, error="OnlyTimelock")  # membership changes only through the timelock
    assert gm.council.proposal(pid)["approvals"] == 1 and gm.council.threshold() == 2


def test_cancel_needs_the_threshold_and_stops_a_scheduled_operation(gov):
    gm, (c1, c2, c3) = gov["gm"], gov["council"]
    before = gm.licensing._call("feeRecipient")
    pending, _ = c1.council.propose(gm.licensing.address, gm.licensing.encode("setFeeRecipient", c1.account.address),
                                    salt=os.urandom(32))
    c2.council.cancel(pending)
    assert gm.council.status(pending) is ProposalStatus.PENDING  # one vote of two
    _reverts(c2.council.cancel, pending, error="AlreadyVotedCancel")
    c3.council.cancel(pending)
    assert gm.council.status(pending) is ProposalStatus.CANCELLED
    _reverts(c3.council.approve, pending, error="NotPending")

    scheduled, _ = c1.council.propose(gm.licensing.address, gm.licensing.encode("setFeeRecipient", c2.account.address),
                                      salt=os.urandom(32))
    c2.council.approve(scheduled)
    assert gm.timelock.ready_at(scheduled) > 1
    c1.council.cancel(scheduled)
    receipt = c3.council.cancel(scheduled)
    assert gm.timelock.events(receipt, "Cancelled")[0]["id"] == scheduled
    assert gm.timelock.ready_at(scheduled) == 0 and gm.council.status(scheduled) is ProposalStatus.CANCELLED
    increase_time(gov["w3"], DELAY + 1)
    _reverts(gm.council.execute, scheduled, error="NotScheduled")
    _reverts(gm.sender.send, gm.timelock.contract.functions.execute(
        gm.licensing.address, 0, gm.licensing.encode("setFeeRecipient", c2.account.address), b"\0" * 32,
        gm.council.proposal(scheduled)["salt"]), error="TimelockUnexpectedOperationState")
    assert gm.licensing._call("feeRecipient") == before


def test_the_council_changes_itself_only_through_the_timelock(gov):
    gm, (c1, c2, _) = gov["gm"], gov["council"]
    newcomer = Account.create()
    pid, _ = c1.council.propose(gm.council.address, gm.council.encode("addMember", newcomer.address),
                                salt=os.urandom(32))
    c2.council.approve(pid)
    assert not gm.council.is_member(newcomer.address)
    increase_time(gov["w3"], DELAY + 1)
    gm.council.execute(pid)
    assert gm.council.is_member(newcomer.address) and len(gm.council.members()) == 4


def test_deploy_refuses_a_council_that_would_give_the_service_admin_power(gov, tmp_path):
    w3, operator = gov["w3"], Account.create()
    others = [Account.create().address for _ in range(2)]
    with pytest.raises(ConfigError, match="council member"):
        deploy(w3, operator, directory=tmp_path, council=[operator.address, *others], threshold=2)
    with pytest.raises(ConfigError, match="threshold 3"):
        deploy(w3, operator, directory=tmp_path, council=others, threshold=3)
    with pytest.raises(ConfigError, match="twice"):
        deploy(w3, operator, directory=tmp_path, council=[others[0], others[0]], threshold=1)
    assert set(CONTRACT_NAMES) <= set(gov["gm"].book.addresses)


@pytest.fixture
def cli_env(gov, monkeypatch, tmp_path):
    """The council CLI pointed at this module's chain and book, with two council members' keystores."""
    from ledger_node.wallets import create_wallet

    gm = gov["gm"]
    monkeypatch.setenv("GRIDMART_RPC_URL", gm.w3.provider.endpoint_uri)
    monkeypatch.setenv("GRIDMART_DEPLOYMENTS_DIR", str(gov["folder"]))
    monkeypatch.setenv("GRIDMART_WALLET_PASSWORD", "council-test")
    names = []
    for member in gov["council"][:2]:
        name = f"gov-{tmp_path.name}-{len(names)}"
        create_wallet(name, "council-test", member.account.key)
        names.append(name)
    get_settings.cache_clear()
    yield names
    monkeypatch.undo()
    get_settings.cache_clear()


def test_council_cli_proposes_approves_and_executes(gov, cli_env):
    from typer.testing import CliRunner

    from marketplace.cli.council import app

    gm, runner = gov["gm"], CliRunner()
    new_key = Account.create().address
    out = runner.invoke(app, ["propose", "UsageAnchor", "grantRole", "ANCHOR_ROLE", new_key, "-w", cli_env[0], "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert info["status"] == "pending" and info["approvals"] == 1
    pid = info["id"]
    out = runner.invoke(app, ["approve", pid, "-w", cli_env[0]])
    assert out.exit_code == 1 and "already approved" in str(out.exception)
    out = runner.invoke(app, ["approve", pid, "-w", cli_env[1]])
    assert out.exit_code == 0 and "scheduled: executable from" in out.output, out.output
    out = runner.invoke(app, ["execute", pid, "-w", cli_env[1]])
    assert out.exit_code == 1 and "delay is not over" in str(out.exception)
    increase_time(gov["w3"], DELAY + 1)
    out = runner.invoke(app, ["execute", pid, "-w", cli_env[1], "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["status"] == "executed", out.output
    assert gm.usage.has_role("ANCHOR_ROLE", new_key)
    out = runner.invoke(app, ["status"])
    assert out.exit_code == 0 and gm.council.address in out.output and "2 of " in out.output
    out = runner.invoke(app, ["propose", "Licensing", "setFeeRecipient", "-w", cli_env[0]])
    assert out.exit_code != 0 and "takes 1 argument" in out.output
