"""Product, licence, usage, member and FL audits against the real devnet — each must pass, and fail when lied to."""
from __future__ import annotations

import json
import os

import pytest

from fl_coordinator import certificate
from ledger_node.audit import (
    Event,
    audit_fl,
    audit_licence,
    audit_member,
    audit_product,
    audit_usage,
    find_by_artifact,
    render,
    signer_authorized,
)
from ledger_node.audit.membership import replay
from ledger_node.config import Settings
from ledger_node.content import cid_to_bytes, compute_cid, open_store
from ledger_node.contracts import Kind, PlanKind, Role, Voucher
from ledger_node.merkle import MerkleTree, canonical, leaf_hash
from tests.chain.helpers import chain_time, make_listing


def names(report, failed_only=True):
    return [c.name for c in report.checks if not (failed_only and c.passed)]


def register(gm, account, payload: bytes, kind=Kind.DATA, previous=0) -> int:
    listing = make_listing(gm, account.address, kind=kind, previous=previous, payload=payload)
    cert_id, _ = gm.products.register(listing, account.address, gm.products.sign_listing(account, listing))
    return cert_id


def test_product_by_id_and_by_file_with_versions_and_status_history(gm, member, ledger):
    pub, _ = member(Role.PUBLISHER)
    v1_bytes, v2_bytes = os.urandom(300), os.urandom(300)
    v1 = register(gm, pub, v1_bytes)
    gm.products.approve(v1)
    v2 = register(gm, pub, v2_bytes, previous=v1)
    gm.products.approve(v2)
    gm.products.withdraw(v1)
    gm.members.suspend(pub.address, "later misconduct")  # a later suspension must not void past signatures

    report = audit_product(ledger, v2, data=v2_bytes)
    assert report.passed, names(report)
    assert [v["certificate"] for v in report.facts["versions"]] == [v1, v2]
    assert [s["status"] for s in report.facts["versions"][0]["status"]] == ["on_shelf", "off_shelf"]
    assert all(s["time"] > 0 and s["tx"].startswith("0x") for s in report.facts["versions"][0]["status"])
    assert find_by_artifact(ledger, v1_bytes) == [v1]

    flipped = bytearray(v2_bytes)
    flipped[7] ^= 0x01
    tampered = audit_product(ledger, v2, data=bytes(flipped))
    assert not tampered.passed and set(names(tampered)) == {"artifact sha-256", "artifact CID"}
    assert find_by_artifact(ledger, bytes(flipped)) == []


def test_metadata_swap_is_named(gm, member, ledger):
    pub, _ = member(Role.PUBLISHER)
    payload = os.urandom(64)
    cert = register(gm, pub, payload)
    assert audit_product(ledger, cert, metadata=b"meta" + payload).passed  # make_listing hashes b"meta"+payload
    swapped = audit_product(ledger, cert, metadata=b'{"title":"someone else\'s"}')
    assert names(swapped) == ["metadata hash"]


def test_signer_must_be_an_active_publisher_at_that_block(gm, member, ledger):
    pub, _ = member(Role.PUBLISHER)
    cert = register(gm, pub, os.urandom(40))
    reg = ledger.events("products", "CertificateRegistered", id=cert)[0]
    assert signer_authorized(ledger, pub.address, reg.position).passed
    admitted = ledger.events("members", "MemberAdmitted", wallet=pub.address)[0]
    before = signer_authorized(ledger, pub.address, admitted.position)  # the same signature, checked before admission
    assert not before.passed and "not an admitted publisher" in before.detail


def test_role_replay_at_block():
    def ev(event, block, **args):
        return Event("members", event, {"wallet": "0xA", **args}, block, 0, f"0x{block:064x}")

    events = [ev("MemberAdmitted", 10, roles=int(Role.SUBSCRIBER), name="u", identityHash=b""),
              ev("RolesChanged", 20, roles=int(Role.PUBLISHER | Role.SUBSCRIBER)),
              ev("MemberSuspended", 30, reason="x"), ev("MemberReinstated", 40)]
    assert replay(events, before=(10, 0)).status == "none"
    assert not replay(events, before=(15, 0)).active_with(Role.PUBLISHER)  # subscriber only then
    assert replay(events, before=(25, 0)).active_with(Role.PUBLISHER)
    assert not replay(events, before=(35, 0)).active_with(Role.PUBLISHER)  # suspended then
    assert replay(events).active_with(Role.PUBLISHER)


def test_licence_purchases_split_and_redemptions(gm, member, ledger):
    pub, as_pub = member(Role.PUBLISHER)
    sub, as_sub = member(Role.SUBSCRIBER)
    product = register(gm, pub, os.urandom(50))
    gm.products.approve(product)
    as_pub.licensing.set_plan(product, PlanKind.PER_USE, 30, 2)
    lid, _ = as_sub.licensing.purchase(product, PlanKind.PER_USE)
    lid2, _ = as_sub.licensing.purchase(product, PlanKind.PER_USE)
    assert lid == lid2
    for nonce in (0, 1, 2):
        voucher = Voucher(lid, nonce, chain_time(gm.w3) + 600, b"download".ljust(32, b"\0"))
        gm.licensing.redeem(voucher, gm.licensing.sign_voucher(sub, voucher))

    report = audit_licence(ledger, lid)
    assert report.passed, names(report)
    assert [p["fee"] for p in report.facts["purchases"]] == [2, 2]
    assert f"28 {sub.address}→{pub.address}" in report.facts["purchases"][0]["movements"]
    assert [r["nonce"] for r in report.facts["redemptions"]] == [0, 1, 2]
    assert report.facts["redemptions"][-1]["uses_left"] == 1

    member_report = audit_member(ledger, sub.address)
    assert member_report.passed, names(member_report)
    assert [m["delta"] for m in member_report.facts["points"]] == [500, -28, -2, -28, -2]


def test_member_history(gm, member, ledger):
    acct, _ = member(Role.SUBSCRIBER)
    gm.members.set_roles(acct.address, Role.PUBLISHER | Role.SUBSCRIBER)
    gm.members.suspend(acct.address, "audit")
    gm.members.reinstate(acct.address)
    report = audit_member(ledger, acct.address)
    assert report.passed, names(report)
    assert [h["event"] for h in report.facts["history"]] == ["MemberAdmitted", "RolesChanged", "MemberSuspended",
                                                             "MemberReinstated"]


def test_usage_record_proof_and_a_forged_record(gm, ledger):
    now = chain_time(gm.w3)
    records = [{"kind": "redeem", "licence": "0x" + "ab" * 32, "holder": "0x" + "11" * 20, "nonce": n, "at": now}
               for n in range(5)]
    tree = MerkleTree.from_records(records)
    batch_id, _ = gm.usage.anchor(tree.root, len(records), now, now)
    bundle = {"record": canonical(records[3]).decode(), "batch_id": batch_id, "proof": [p.hex() for p in tree.proof(3)]}
    report = audit_usage(ledger, bundle)  # anchored and included, but no holder signed it (#21 item 8)
    assert names(report) == ["the holder signed this redemption"]
    forged = dict(bundle, record=canonical({**records[3], "nonce": 99}).decode())
    assert set(names(audit_usage(ledger, forged))) == {"Merkle proof reaches the anchored root",
                                                       "contract's own verify() agrees",
                                                       "the holder signed this redemption"}
    assert leaf_hash(bundle["record"].encode()) == tree.levels[0][3]


def test_fl_task_rounds_shares_and_rewards(gm, member, ledger):
    owner, as_owner = member(Role.PUBLISHER)
    p1, as_p1 = member(Role.SUBSCRIBER)
    p2, as_p2 = member(Role.SUBSCRIBER)
    tool = register(gm, owner, os.urandom(70), kind=Kind.TOOL)
    task, _ = as_owner.federated.open_task(tool, 101, b"\x05" * 32)
    as_p1.federated.join(task)
    as_p2.federated.join(task)
    models = [cid_to_bytes(compute_cid(f"model {r}".encode())) for r in (1, 2)]
    gm.federated.record_round(task, 1, models[0], [p1.address, p2.address], [100, 300], [2500, 7500])
    gm.federated.record_round(task, 2, models[1], [p1.address, p2.address], [200, 200], [5000, 5000])
    as_owner.federated.fund_task(task, 9)  # the pool is what was escrowed at opening plus every funding
    gm.federated.finalize(task, tool)
    report = audit_fl(ledger, task)
    assert report.passed, names(report)
    assert [r["model_cid"] for r in report.facts["rounds"]] == [compute_cid(f"model {r}".encode()) for r in (1, 2)]
    rewards = next(c for c in report.checks if c.name == "rewards paid pro rata")
    assert "refund to owner 1" in rewards.detail and "pool 110" in rewards.detail  # 110·7500/20000 = 41, ·12500 = 68


def test_fl_task_certificate_pins_the_initial_model_and_context(gm, member, ledger, tmp_path):
    owner, as_owner = member(Role.PUBLISHER)
    tool = register(gm, owner, os.urandom(70), kind=Kind.TOOL)
    store = open_store(Settings(home=tmp_path))
    model, context = b"initial weights", b"public HE context"
    cids = {"model": store.put_bytes(model).cid, "context": store.put_bytes(context).cid}

    def open_with(doc: bytes, spec_hash: bytes | None = None) -> int:
        spec = spec_hash or bytes.fromhex(certificate.task_id_of(doc)[2:])
        return as_owner.federated.open_task(tool, 0, spec, cid_to_bytes(store.put_bytes(doc).cid))[0]

    good = certificate.issue(artifacts={"model": (cids["model"], model), "context": (cids["context"], context)},
                             rounds=3)
    report = audit_fl(ledger, open_with(good), store)
    assert report.passed, names(report)
    assert {"task certificate", "certified model", "certified context"} <= set(names(report, failed_only=False))
    assert report.facts["certificate"]["artifacts"]["model"]["cid"] == cids["model"]
    without_store = audit_fl(ledger, open_with(good))  # chain only: the certificate is named, not fetched
    assert "task certificate" not in names(without_store, failed_only=False)
    assert without_store.facts["certificate"]["sha256"] == certificate.task_id_of(good)[2:]

    # the certificate names other bytes than those stored under the model's CID
    lying = certificate.issue(artifacts={"model": (cids["model"], b"other weights"), "context": (cids["context"], context)})
    assert names(audit_fl(ledger, open_with(lying), store)) == ["certified model"]
    # it names an artifact the content store does not have
    absent = certificate.issue(artifacts={"model": (compute_cid(b"never stored"), b"never stored")})
    assert names(audit_fl(ledger, open_with(absent), store)) == ["certified model"]
    # the spec hash on chain is not the certificate's
    assert names(audit_fl(ledger, open_with(good, b"\x07" * 32), store)) == ["task certificate"]
    # opened without naming a certificate
    bare, _ = as_owner.federated.open_task(tool, 0, b"\x08" * 32)
    assert names(audit_fl(ledger, bare, store)) == ["task certificate"]


def test_renderers_mark_each_check_with_its_transaction(gm, member, ledger):
    pub, _ = member(Role.PUBLISHER)
    data = os.urandom(30)
    cert = register(gm, pub, data)
    good, bad = audit_product(ledger, cert, data=data), audit_product(ledger, cert, data=data + b"!")
    page = render([good, bad], "html")
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page.split("</style>")[1]
    assert page.count("<td class='fail'>failed") == 2 and good.checks[0].tx in page
    doc = json.loads(render([good, bad], "json"))
    assert [d["passed"] for d in doc] == [True, False]
    assert "FAIL artifact sha-256" in render([bad], "text")


def test_unknown_subjects_say_what_to_fix(ledger):
    from ledger_node.audit import NotOnChain
    with pytest.raises(NotOnChain, match="check the id"):
        audit_product(ledger, 10**6)
    with pytest.raises(NotOnChain, match="never admitted"):
        audit_member(ledger, "0x" + "22" * 20)
