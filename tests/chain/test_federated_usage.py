"""FederatedRegistry (tasks, rounds, shares, rewards) and UsageAnchor (Merkle batches)."""
from __future__ import annotations

import pytest
from eth_account import Account

from ledger_node.contracts import Kind, Role
from ledger_node.errors import ContractRevert
from ledger_node.merkle import MerkleTree, leaf_hash, verify

from .helpers import chain_time, publish

CID = b"\x01\x70\x12\x20" + b"\x42" * 32


@pytest.fixture
def task(gm, member):
    owner, as_owner = member(Role.PUBLISHER)
    product = publish(gm, owner, kind=Kind.TOOL)
    task_id, _ = as_owner.federated.open_task(product, 100, b"\x01" * 32)
    partners = [member(Role.SUBSCRIBER) for _ in range(3)]
    for _, client in partners:
        client.federated.join(task_id)
    return owner, as_owner, product, task_id, partners


def test_open_task_escrows_the_pool_and_needs_a_tool_product(gm, member, task):
    owner, as_owner, product, task_id, _ = task
    assert gm.points.balance_of(owner.address) == 400
    assert gm.points.balance_of(gm.federated.address) >= 100
    data_product = publish(gm, owner, kind=Kind.DATA)
    with pytest.raises(ContractRevert) as err:
        as_owner.federated.open_task(data_product, 0, b"\x00" * 32)
    assert err.value.error_name == "NotToolPublisher"
    _, stranger = member(Role.PUBLISHER)
    with pytest.raises(ContractRevert) as err:
        stranger.federated.open_task(product, 0, b"\x00" * 32)
    assert err.value.error_name == "NotToolPublisher"


def test_rounds_record_shares_and_finalize_pays_pro_rata(gm, member, task):
    owner, as_owner, product, task_id, partners = task
    addrs = [a.address for a, _ in partners]
    gm.federated.record_round(task_id, 1, CID, addrs, [500, 300, 200], [5000, 3000, 2000])
    gm.federated.record_round(task_id, 2, CID, addrs[:2], [500, 300], [6250, 3750])  # third partner dropped out
    assert gm.federated.contributions(task_id) == dict(zip(addrs, [11250, 6750, 2000]))
    assert gm.federated.round_model(task_id, 2) != b"\x00" * 32

    final = publish(gm, owner, kind=Kind.TOOL, previous=product)
    before = [gm.points.balance_of(a) for a in addrs] + [gm.points.balance_of(owner.address)]
    receipt = as_owner.federated.finalize(task_id, final)
    after = [gm.points.balance_of(a) for a in addrs] + [gm.points.balance_of(owner.address)]
    paid = [b - a for a, b in zip(before, after)]
    assert paid[:3] == [100 * 11250 // 20000, 100 * 6750 // 20000, 100 * 2000 // 20000]  # 56, 33, 10
    assert sum(paid) == 100  # remainder back to the owner: nothing created or lost
    assert len(gm.federated.events(receipt, "RewardPaid")) == 3
    assert gm.federated.task(task_id)["final_certificate"] == final
    with pytest.raises(ContractRevert) as err:
        gm.federated.record_round(task_id, 3, CID, addrs, [1, 1, 1], [3334, 3333, 3333])
    assert err.value.error_name == "TaskClosed"


def test_round_rules(gm, member, task):
    owner, as_owner, product, task_id, partners = task
    addrs = [a.address for a, _ in partners]
    outsider = Account.create().address
    cases = [
        ((task_id, 2, CID, addrs, [1, 1, 1], [5000, 3000, 2000]), "WrongRound"),
        ((task_id, 1, CID, addrs, [1, 1, 1], [5000, 3000, 1999]), "SharesDoNotSum"),
        ((task_id, 1, CID, [outsider], [1], [10000]), "NotPartner"),
        ((task_id, 1, CID, addrs, [1, 1], [5000, 3000, 2000]), "LengthMismatch"),
        ((task_id, 1, CID, [addrs[0], addrs[1], addrs[0]], [1, 1, 1], [5000, 3000, 2000]), "DuplicatePartner"),
        ((task_id, 1, CID, [addrs[0], addrs[0]], [1, 1], [5000, 5000]), "DuplicatePartner"),
        ((999, 1, CID, addrs, [1, 1, 1], [5000, 3000, 2000]), "UnknownTask"),
    ]
    for args, error in cases:
        with pytest.raises(ContractRevert) as err:
            gm.federated.record_round(*args)
        assert err.value.error_name == error
    with pytest.raises(ContractRevert) as err:  # only the coordinator records rounds
        as_owner.federated.record_round(task_id, 1, CID, addrs, [1, 1, 1], [5000, 3000, 2000])
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(ContractRevert) as err:
        partners[0][1].federated.join(task_id)
    assert err.value.error_name == "AlreadyJoined"
    with pytest.raises(ContractRevert) as err:
        as_owner.federated.finalize(task_id, product)
    assert err.value.error_name == "NoRounds"
    gm.federated.record_round(task_id, 1, CID, addrs, [1, 1, 1], [3334, 3333, 3333])
    other_owner, _ = member(Role.PUBLISHER)
    unrelated = publish(gm, other_owner, kind=Kind.TOOL)
    with pytest.raises(ContractRevert) as err:
        as_owner.federated.finalize(task_id, unrelated)
    assert err.value.error_name == "WrongCertificate"


@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_merkle_batches_anchor_and_prove(gm, size):
    now = chain_time(gm.w3)
    records = [{"kind": "redeem", "licence": i, "holder": "0xabc", "at": now - size + i} for i in range(size)]
    tree = MerkleTree.from_records(records)
    batch_id, receipt = gm.usage.anchor(tree.root, size, now - size, now)
    assert gm.usage.batch(batch_id)["count"] == size
    if size == 1000:
        print(f"anchor gas for 1000 records: {receipt['gasUsed']} ({receipt['gasUsed'] / size:.1f}/record)")
    on_chain = range(size) if size < 1000 else range(0, size, 97)
    for i in range(size):
        proof = tree.proof(i)
        assert verify(proof, tree.root, leaf_hash(records[i]))
        if i in on_chain:
            assert gm.usage.verify(batch_id, leaf_hash(records[i]), proof)
    forged = dict(records[0], licence=999_999)
    assert not verify(tree.proof(0), tree.root, leaf_hash(forged))
    assert not gm.usage.verify(batch_id, leaf_hash(forged), tree.proof(0))


def test_anchor_rules(gm, member):
    _, as_member = member()
    with pytest.raises(ContractRevert) as err:
        as_member.usage.anchor(b"\x01" * 32, 1, 0, 1)
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(ContractRevert) as err:
        gm.usage.anchor(b"\x00" * 32, 0, 0, 1)
    assert err.value.error_name == "EmptyBatch"
    with pytest.raises(ContractRevert) as err:
        gm.usage.anchor(b"\x01" * 32, 1, 5, 1)
    assert err.value.error_name == "InvalidWindow"


def test_coordinator_attested_task_binds_its_product_at_finalisation(gm, member):
    owner, as_owner = member(Role.PUBLISHER)
    partners = [member(Role.SUBSCRIBER) for _ in range(2)]
    _, as_stranger = member(Role.PUBLISHER)
    with pytest.raises(ContractRevert) as err:  # only the coordinator attests
        as_stranger.federated.open_task_for(owner.address, b"\x01" * 32)
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    task_id, _ = gm.federated.open_task_for(owner.address, b"\x02" * 32)
    with pytest.raises(ContractRevert) as err:
        as_stranger.federated.fund_task(task_id, 10)
    assert err.value.error_name == "Unauthorized"
    as_owner.federated.fund_task(task_id, 60)
    assert gm.points.balance_of(owner.address) == 440
    for account, _ in partners:
        gm.federated.add_partner(task_id, account.address)
    with pytest.raises(ContractRevert) as err:
        gm.federated.add_partner(task_id, partners[0][0].address)
    assert err.value.error_name == "AlreadyJoined"
    gm.federated.record_round(task_id, 1, CID, [a.address for a, _ in partners], [300, 100], [7500, 2500])
    data_cert = publish(gm, owner, kind=Kind.DATA)
    with pytest.raises(ContractRevert) as err:  # the final model must be the owner's tool product
        as_owner.federated.finalize(task_id, data_cert)
    assert err.value.error_name == "WrongCertificate"
    tool_cert = publish(gm, owner, kind=Kind.TOOL)
    as_owner.federated.finalize(task_id, tool_cert)
    task = gm.federated.task(task_id)
    assert task["product_id"] == tool_cert and task["final_certificate"] == tool_cert
    assert [gm.points.balance_of(a.address) for a, _ in partners] == [545, 515]


def test_task_bound_to_a_tool_product_takes_only_its_versions(gm, member):
    owner, as_owner = member(Role.PUBLISHER)
    partner, _ = member(Role.SUBSCRIBER)
    data_cert = publish(gm, owner, kind=Kind.DATA)
    with pytest.raises(ContractRevert) as err:  # only the owner's own tool products
        gm.federated.open_task_for(owner.address, b"\x03" * 32, data_cert)
    assert err.value.error_name == "NotToolPublisher"
    tool = publish(gm, owner, kind=Kind.TOOL)
    task_id, _ = gm.federated.open_task_for(owner.address, b"\x04" * 32, tool)
    assert gm.federated.task(task_id)["product_id"] == tool
    gm.federated.add_partner(task_id, partner.address)
    gm.federated.record_round(task_id, 1, CID, [partner.address], [10], [10_000])
    other_tool = publish(gm, owner, kind=Kind.TOOL)
    with pytest.raises(ContractRevert) as err:
        as_owner.federated.finalize(task_id, other_tool)
    assert err.value.error_name == "WrongCertificate"
    version2 = publish(gm, owner, kind=Kind.TOOL, previous=tool)
    as_owner.federated.finalize(task_id, version2)
    assert gm.federated.task(task_id)["final_certificate"] == version2
