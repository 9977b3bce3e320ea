"""The FL coordinator's contribution ledger on the real FederatedRegistry."""
from __future__ import annotations

import hashlib

import pytest

from fl_coordinator.chain_ledger import ChainLedger
from fl_coordinator.errors import Refused
from ledger_node.content import cid_to_bytes, compute_cid
from ledger_node.contracts import Kind, Role
from tests.chain.helpers import publish


def test_rounds_and_shares_land_on_chain(gm, member):
    owner, as_owner = member(Role.PUBLISHER)
    partners = [member(Role.SUBSCRIBER)[0].address for _ in range(3)]
    ledger = ChainLedger(gm)
    task_id = "0x" + hashlib.sha256(b"task-1").hexdigest()
    spec_cid = compute_cid(b"task certificate")
    ledger.open_task(task_id, owner.address, 0, spec_cid)
    for p in partners:
        ledger.join(task_id, p)
    ledger.join(task_id, partners[0])  # a repeated join is not an error
    cid = compute_cid(b"aggregated model, round 1")
    ledger.record_round(task_id, 1, cid, partners, [600, 300, 100], [6000, 3000, 1000])
    ledger.record_round(task_id, 1, cid, partners, [600, 300, 100], [6000, 3000, 1000])  # a retry: no-op
    ledger.record_round(task_id, 2, compute_cid(b"round 2"), partners[:2], [600, 300], [6667, 3333])
    fresh = ChainLedger(gm)  # a restarted coordinator finds the task by its spec hash
    chain_id = fresh.chain_task_id(task_id)
    opened = gm.federated.contract.events.TaskOpened().get_logs(from_block=0, argument_filters={"taskId": chain_id})
    assert opened[0]["args"]["specHash"].hex() == task_id[2:]
    assert opened[0]["args"]["specCid"] == cid_to_bytes(spec_cid)  # where the certificate is
    assert gm.federated.contributions(chain_id) == dict(zip(partners, [12667, 6333, 1000]))
    assert fresh.view(task_id)["rounds_recorded"] == 2
    as_owner.federated.fund_task(chain_id, 100)
    with pytest.raises(Refused, match="not a version of this task's tool product") as err:
        fresh.finalize(task_id, publish(gm, owner, kind=Kind.DATA))
    assert err.value.status == 409
    final = publish(gm, owner, kind=Kind.TOOL)
    paid = fresh.finalize(task_id, final)
    assert paid == dict(zip(partners, [63, 31, 5]))
    assert ChainLedger(gm).finalize(task_id, final) == paid  # a retry after a lost answer: same payouts, paid once
    assert [gm.points.balance_of(p) for p in partners] == [500 + 63, 500 + 31, 500 + 5]
    assert fresh.view(task_id)["status"] == "finalized"


def test_the_chain_refuses_non_members_with_a_reason(gm, member):
    owner, _ = member(Role.SUBSCRIBER)  # not a publisher: cannot own a task
    ledger = ChainLedger(gm)
    with pytest.raises(Refused, match="not an active member") as err:
        ledger.open_task("0x" + "ab" * 32, owner.address, 0, compute_cid(b"ab"))
    assert err.value.status == 403
    publisher, _ = member(Role.PUBLISHER)
    ledger.open_task("0x" + "cd" * 32, publisher.address, 0, compute_cid(b"cd"))
    with pytest.raises(Refused, match="not an active member"):
        ledger.join("0x" + "cd" * 32, "0x" + "11" * 20)
