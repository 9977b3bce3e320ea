"""Gas used by every GridMart operation, on a fresh Hardhat node.

Prints a table (operation, gas, target) and, as its last line, one JSON object
{"operation": gas, ...}. Ocean Protocol's figures for comparison: ~1.18 M gas to publish
an asset, ~112 k to order one.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
_home = tempfile.mkdtemp(prefix="gridmart-bench-")
os.environ.setdefault("GRIDMART_HOME", _home)
os.environ.setdefault("GRIDMART_DEPLOYMENTS_DIR", _home + "/deployments")

import hashlib  # noqa: E402

from eth_account import Account  # noqa: E402

from ledger_node.chain import connect  # noqa: E402
from ledger_node.contracts import GridMart, Kind, Listing, PlanKind, Role, Voucher  # noqa: E402
from ledger_node.deploy import deploy  # noqa: E402
from ledger_node.devnet import Devnet, free_port  # noqa: E402
from ledger_node.merkle import MerkleTree  # noqa: E402

TARGETS = {"register_certificate": 150_000, "register_certificate_first": 150_000, "purchase": 100_000,
           "purchase_first": 100_000, "redeem_per_use": 60_000, "redeem_per_use_first": 60_000,
           "anchor_1000_records_per_record": 1_000}


def main() -> None:
    net = Devnet(port=free_port(), workdir=Path(_home) / "devnet").start()
    gas: dict[str, float] = {}
    try:
        w3 = connect(net.url)
        op = Account.create()
        council = [Account.create() for _ in range(3)]
        book, _ = deploy(w3, op, council=[c.address for c in council], threshold=2, delay=3600)
        gm = GridMart(w3, book, op)
        now = lambda: w3.eth.get_block("latest")["timestamp"]  # noqa: E731

        pub, sub, sub2 = Account.create(), Account.create(), Account.create()
        gas["admit_member"] = gm.members.admit(pub.address, "Jiangsu", b"\x01" * 32, Role.PUBLISHER)["gasUsed"]
        gm.members.admit(sub.address, "Zhejiang", b"\x02" * 32, Role.SUBSCRIBER)
        gm.members.admit(sub2.address, "Anhui", b"\x03" * 32, Role.SUBSCRIBER | Role.PUBLISHER)
        gas["set_roles"] = gm.members.set_roles(sub2.address, Role.SUBSCRIBER)["gasUsed"]
        gas["suspend_member"] = gm.members.suspend(sub2.address, "check")["gasUsed"]
        gas["reinstate_member"] = gm.members.reinstate(sub2.address)["gasUsed"]

        as_pub, as_sub, as_sub2 = gm.as_account(pub), gm.as_account(sub), gm.as_account(sub2)

        def register(kind=Kind.DATA, previous=0):
            data = os.urandom(64)
            listing = Listing(kind, b"\x01\x55\x12\x20" + hashlib.sha256(data).digest(), hashlib.sha256(data).digest(),
                              hashlib.sha256(b"m" + data).digest(), previous, gm.products.nonce(pub.address), now() + 3600)
            return gm.products.register(listing, pub.address, gm.products.sign_listing(pub, listing))

        product, r = register()
        gas["register_certificate_first"] = r["gasUsed"]
        product2, r = register(kind=Kind.TOOL)
        gas["register_certificate"] = r["gasUsed"]
        v2, r = register(previous=product)
        gas["register_new_version"] = r["gasUsed"]
        gas["approve"] = gm.products.approve(v2)["gasUsed"]
        gm.products.approve(product2)
        gas["withdraw"] = as_pub.products.withdraw(product2)["gasUsed"]
        gm.products.approve(product2)
        gas["set_plan"] = as_pub.licensing.set_plan(product, PlanKind.PER_USE, 30, 3)["gasUsed"]
        as_pub.licensing.set_plan(product, PlanKind.MONTH, 50)
        gas["set_price_bounds"] = gm.licensing.set_price_bounds(10, 50)["gasUsed"]
        lid, r = as_sub.licensing.purchase(product, PlanKind.PER_USE)
        gas["purchase_first"] = r["gasUsed"]  # first sale ever: the operator's balance slot is created
        _, r = as_sub2.licensing.purchase(product, PlanKind.PER_USE)
        gas["purchase"] = r["gasUsed"]  # a new licence for a new buyer
        _, r = as_sub.licensing.purchase(product, PlanKind.PER_USE)
        gas["purchase_repeat"] = r["gasUsed"]

        def redeem(nonce):
            v = Voucher(lid, nonce, now() + 600, b"download".ljust(32, b"\0"))
            return gm.licensing.redeem(v, as_sub.licensing.sign_voucher(sub, v))["gasUsed"]

        gas["redeem_per_use_first"] = redeem(0)  # the holder's first nonce word is created
        gas["redeem_per_use"] = redeem(1)
        as_sub.licensing.purchase(product, PlanKind.MONTH)
        gas["redeem_time_plan"] = redeem(2)
        gas["revoke_licence"] = gm.licensing.revoke(lid, "bench")["gasUsed"]

        partners = [Account.create() for _ in range(10)]
        for p in partners:
            gm.members.admit(p.address, "partner", b"\x04" * 32, Role.SUBSCRIBER)
        task_id, r = as_pub.federated.open_task(product2, 100, b"\x05" * 32)
        gas["open_fl_task"] = r["gasUsed"]
        gas["join_fl_task"] = gm.as_account(partners[0]).federated.join(task_id)["gasUsed"]
        for p in partners[1:]:
            gm.as_account(p).federated.join(task_id)
        cid = b"\x01\x70\x12\x20" + b"\x07" * 32
        addrs = [p.address for p in partners]
        gas["record_round_10_partners"] = gm.federated.record_round(task_id, 1, cid, addrs, [100] * 10, [1000] * 10)["gasUsed"]
        gas["record_round_10_partners_next"] = gm.federated.record_round(task_id, 2, cid, addrs, [100] * 10, [1000] * 10)["gasUsed"]
        final, _ = register(kind=Kind.TOOL, previous=product2)
        gas["finalize_fl_task_10_partners"] = as_pub.federated.finalize(task_id, final)["gasUsed"]

        # an admin action: propose (1st approval), 2nd approval schedules it, anyone executes after the delay
        c1, c2 = gm.as_account(council[0]), gm.as_account(council[1])
        pid, r = c1.council.propose(gm.licensing.address, gm.licensing.encode("setFeeRecipient", op.address))
        gas["council_propose"] = r["gasUsed"]
        gas["council_approve_and_schedule"] = c2.council.approve(pid)["gasUsed"]
        w3.provider.make_request("evm_increaseTime", [3601])
        w3.provider.make_request("evm_mine", [])
        gas["council_execute_after_delay"] = gm.council.execute(pid)["gasUsed"]

        tree = MerkleTree.from_records([{"n": i} for i in range(1000)])
        _, r = gm.usage.anchor(tree.root, 1000, now() - 60, now())
        gas["anchor_1000_records"] = r["gasUsed"]
        gas["anchor_1000_records_per_record"] = round(r["gasUsed"] / 1000, 1)
    finally:
        net.stop()

    print(f"{'operation':<32} {'gas':>10} {'target':>10}  ok")
    for name, value in gas.items():
        target = TARGETS.get(name)
        mark = "" if target is None else ("yes" if value <= target else "NO")
        print(f"{name:<32} {value:>10,} {'' if target is None else f'{target:,}':>10}  {mark}")
    print("(Ocean Protocol: publish ~1,180,000; order ~112,000)")
    print(json.dumps(gas))


if __name__ == "__main__":
    main()
