"""The FL coordinator's contribution ledger on the real FederatedRegistry."""
from __future__ import annotations

import hashlib

from ledger_node.content import compute_cid
from ledger_node.contracts import Kind, Role
from fl_coordinator.chain_ledger import ChainLedger
from tests.chain.helpers import publish


def test_rounds_and_shares_land_on_chain(gm, member):
    owner, as_owner = member(Role.PUBLISHER)
    partners = [member(Role.SUBSCRIBER)[0].address for _ in range(3)]
    ledger = ChainLedger(gm)
    task_id = "0x" + hashlib.sha256(b"task-1").hexdigest()
    ledger.open_task(task_id, owner.address, "m", "c", rounds=2, min_partners=2)
    for p in partners:
        ledger.join(task_id, p)
    cid = compute_cid(b"aggregated model, round 1")
    ledger.record_round(task_id, 1, cid, partners, [600, 300, 100], [6000, 3000, 1000])
    ledger.record_round(task_id, 2, compute_cid(b"round 2"), partners[:2], [600, 300], [6667, 3333])
    chain_id = ChainLedger(gm).chain_task_id(task_id)  # a fresh ledger finds the task by its spec hash
    assert gm.federated.contributions(chain_id) == dict(zip(partners, [12667, 6333, 1000]))
    assert gm.federated.task(chain_id)["rounds"] == 2
    as_owner.federated.fund_task(chain_id, 100)
    final = publish(gm, owner, kind=Kind.TOOL)
    as_owner.federated.finalize(chain_id, final)
    assert [gm.points.balance_of(p) for p in partners] == [500 + 63, 500 + 31, 500 + 5]
