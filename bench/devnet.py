"""The two devnet clients side by side, on this machine, in one run: anvil and Hardhat.

For each client, a fresh node in a temporary folder:
- start: spawn → first eth_chainId answer (median of 3 cold starts); for anvil also the
  restart that loads the state saved by the workload below (hundreds of transactions),
  the stop that writes it (SIGTERM → exit; an empty chain's stop for comparison), and
  the state file's size;
- tx/s: BENCH_TRANSFERS pre-signed raw ETH transfers, then BENCH_CALLS pre-signed
  contract calls (MemberRegistry.admit, fixed gas), each sent back to back (automine:
  one block per transaction), timed from the first send to the last receipt;
- deploy: `ledger_node.deploy.deploy` (every contract and its wiring, each transaction
  estimated, sent and waited for, as `gridmart up` does), in seconds;
- gas: the same transactions (the deployment, an admission, a listing, its approval, a
  plan, a purchase, a transfer) with identical calldata on both clients; gasUsed must be
  equal, transaction by transaction.

Prints a table, the gas comparison and, as its last line, one JSON object with every figure.
Exits 1 if any gasUsed differs.
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOME = Path(tempfile.mkdtemp(prefix="gridmart-bench-devnet-"))
os.environ.update(GRIDMART_HOME=str(HOME), GRIDMART_DEPLOYMENTS_DIR=str(HOME / "deployments"))

from eth_account import Account  # noqa: E402
from eth_utils import keccak  # noqa: E402

from ledger_node.chain import connect  # noqa: E402
from ledger_node.compiler import compile_contracts  # noqa: E402
from ledger_node.contracts import GridMart, Kind, Listing, PlanKind, Role  # noqa: E402
from ledger_node.deploy import deploy  # noqa: E402
from ledger_node.devnet import STATE_INTERVAL, Devnet, free_port  # noqa: E402

TRANSFERS = int(os.environ.get("BENCH_TRANSFERS", 1000))
CALLS = int(os.environ.get("BENCH_CALLS", 500))
STARTS = int(os.environ.get("BENCH_STARTS", 5))
#: the Hardhat mnemonic's account #0, funded by both clients
FUNDED = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")


def key(label: str) -> Account:
    """The same account on both clients, so calldata (and gas) can be compared."""
    return Account.from_key(keccak(text=f"gridmart-bench-devnet/{label}"))


def timed_start(net: Devnet) -> float:
    t = time.perf_counter()
    net.start()
    return time.perf_counter() - t


def send_all(w3, raws: list[bytes]) -> float:
    """Send pre-signed transactions back to back; seconds until the last one's receipt."""
    t = time.perf_counter()
    hashes = [w3.eth.send_raw_transaction(raw) for raw in raws]
    w3.eth.wait_for_transaction_receipt(hashes[-1], timeout=300, poll_latency=0.01)
    elapsed = time.perf_counter() - t
    assert all(w3.eth.get_transaction_receipt(h)["status"] == 1 for h in hashes[:: max(1, len(hashes) // 20)])
    return elapsed


def gas_sequence(w3, gm: GridMart) -> list[tuple[str, int]]:
    """gasUsed of the comparison transactions, in order: the deployment's, then a few calls."""
    gas: list[tuple[str, int]] = []
    for number in range(1, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number)["transactions"]:
            receipt = w3.eth.get_transaction_receipt(tx)
            gas.append((f"deploy#{len(gas) + 1}" + ("(create)" if receipt["contractAddress"] else ""),
                        receipt["gasUsed"]))
    pub, sub = key("publisher"), key("subscriber")
    gas.append(("admit_publisher", gm.members.admit(pub.address, "Jiangsu", b"\x01" * 32, Role.PUBLISHER)["gasUsed"]))
    gas.append(("admit_subscriber", gm.members.admit(sub.address, "Zhejiang", b"\x02" * 32, Role.SUBSCRIBER)["gasUsed"]))
    data = b"grid heat map 2026"
    listing = Listing(Kind.DATA, b"\x01\x55\x12\x20" + hashlib.sha256(data).digest(), hashlib.sha256(data).digest(),
                      hashlib.sha256(b"meta" + data).digest(), 0, gm.products.nonce(pub.address), 4_000_000_000)
    product, r = gm.products.register(listing, pub.address, gm.products.sign_listing(pub, listing))
    gas.append(("register_certificate", r["gasUsed"]))
    gas.append(("approve", gm.products.approve(product)["gasUsed"]))
    gas.append(("set_plan", gm.as_account(pub).licensing.set_plan(product, PlanKind.PER_USE, 30, 3)["gasUsed"]))
    _, r = gm.as_account(sub).licensing.purchase(product, PlanKind.PER_USE)
    gas.append(("purchase", r["gasUsed"]))
    tx = FUNDED.sign_transaction({"to": pub.address, "value": 1, "gas": 21000, "gasPrice": 0, "chainId": 31337,
                                  "nonce": w3.eth.get_transaction_count(FUNDED.address)})
    gas.append(("eth_transfer", w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(tx.raw_transaction))["gasUsed"]))
    return gas


def run(client: str) -> tuple[dict, list[tuple[str, int]]]:
    workdir = HOME / client
    figures: dict = {}
    starts, stops = [], []
    for i in range(STARTS):  # cold starts: empty folder, so anvil has no state to load
        net = Devnet(port=free_port(), workdir=workdir / f"cold-{i}", client=client)
        try:
            starts.append(timed_start(net))
        finally:
            t = time.perf_counter()
            net.stop()
            stops.append(time.perf_counter() - t)
    figures["start_s"] = round(statistics.median(starts), 3)
    figures["stop_empty_s"] = round(statistics.median(stops), 3)

    net = Devnet(port=free_port(), workdir=workdir / "main", client=client)
    try:
        figures["first_start_s"] = round(timed_start(net), 3)
        w3 = connect(net.url)
        operator = key("operator")
        council = [key(f"council-{i}").address for i in range(3)]
        t = time.perf_counter()
        book, _ = deploy(w3, operator, directory=workdir / "deployments", council=council, threshold=2, delay=3600)
        figures["deploy_s"] = round(time.perf_counter() - t, 3)
        figures["deploy_txs"] = w3.eth.block_number
        gm = GridMart(w3, book, operator)
        gas = gas_sequence(w3, gm)

        nonce = w3.eth.get_transaction_count(FUNDED.address)
        raws = [FUNDED.sign_transaction({"to": key(f"to-{i}").address, "value": 10**15, "gas": 21000, "gasPrice": 0,
                                         "chainId": 31337, "nonce": nonce + i}).raw_transaction
                for i in range(TRANSFERS)]
        elapsed = send_all(w3, raws)
        figures["transfer_tx_s"] = round(TRANSFERS / elapsed, 1)

        admit = gm.members.contract.functions.admit
        nonce = w3.eth.get_transaction_count(operator.address)
        raws = [operator.sign_transaction(admit(key(f"member-{i}").address, f"unit {i}", keccak(text=str(i)),
                                                int(Role.SUBSCRIBER)).build_transaction(
                    {"from": operator.address, "gas": 300_000, "gasPrice": 0, "chainId": 31337,
                     "nonce": nonce + i})).raw_transaction
                for i in range(CALLS)]
        elapsed = send_all(w3, raws)
        figures["contract_call_tx_s"] = round(CALLS / elapsed, 1)
        figures["blocks"] = w3.eth.block_number

        if client == "anvil":
            head = w3.eth.get_block("latest")["hash"]
            t = time.perf_counter()
            net.stop()
            figures["stop_with_dump_s"] = round(time.perf_counter() - t, 3)
            figures["state_file_kib"] = round(net.state_path.stat().st_size / 1024, 1)
            figures["state_kib_per_block"] = round(figures["state_file_kib"] / figures["blocks"], 2)
            figures["restart_with_state_s"] = round(timed_start(net), 3)
            w3 = connect(net.url)
            assert w3.eth.get_block("latest")["hash"] == head, "the restart lost blocks"
            assert GridMart(w3, book).members.member(key(f"member-{CALLS - 1}").address).roles == Role.SUBSCRIBER
    finally:
        net.stop()
    return figures, gas


def main() -> None:
    compile_contracts()  # compiled once, outside the timings
    results: dict[str, dict] = {}
    gas: dict[str, list[tuple[str, int]]] = {}
    for client in ("anvil", "hardhat"):
        results[client], gas[client] = run(client)

    rows = ["start_s", "first_start_s", "restart_with_state_s", "stop_empty_s", "stop_with_dump_s", "state_file_kib",
            "state_kib_per_block",
            "deploy_s", "deploy_txs", "transfer_tx_s", "contract_call_tx_s", "blocks"]
    print(f"{'figure':<24} {'anvil':>10} {'hardhat':>10}")
    for row in rows:
        a, h = results["anvil"].get(row, ""), results["hardhat"].get(row, "")
        print(f"{row:<24} {a!s:>10} {h!s:>10}")
    print(f"(transfers: {TRANSFERS}, contract calls: {CALLS}, cold starts: {STARTS}, anvil state interval "
          f"{STATE_INTERVAL} s)")

    print(f"\n{'transaction':<28} {'anvil gas':>10} {'hardhat gas':>12}  same")
    differences = []
    names_a = [n for n, _ in gas["anvil"]]
    names_h = [n for n, _ in gas["hardhat"]]
    if names_a != names_h:
        differences.append({"sequence": {"anvil": names_a, "hardhat": names_h}})
    for (name, a), (_, h) in zip(gas["anvil"], gas["hardhat"]):
        print(f"{name:<28} {a:>10,} {h:>12,}  {'yes' if a == h else 'NO'}")
        if a != h:
            differences.append({"tx": name, "anvil": a, "hardhat": h})
    total_a, total_h = sum(g for _, g in gas["anvil"]), sum(g for _, g in gas["hardhat"])
    print(f"{'total':<28} {total_a:>10,} {total_h:>12,}  {'yes' if total_a == total_h else 'NO'}")

    out = {"anvil": results["anvil"], "hardhat": results["hardhat"],
           "gas": {"transactions": len(gas["anvil"]), "total_anvil": total_a, "total_hardhat": total_h,
                   "equal": not differences, "differences": differences},
           "config": {"transfers": TRANSFERS, "contract_calls": CALLS, "cold_starts": STARTS,
                      "state_interval_s": STATE_INTERVAL}}
    print(json.dumps(out))
    if differences:
        sys.exit(1)


if __name__ == "__main__":
    main()
