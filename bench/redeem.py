"""Redemption throughput and latency for a time-plan licence on a small artifact.

A fresh Hardhat node and a `gridmart serve` process; the load generator (asyncio + httpx,
on loopback, same machine) posts pre-signed vouchers with a fixed concurrency, bounded in
requests and in time. Prints a table and, last, one JSON object with every figure.
Target: >= 1,000 req/s with p99 <= 50 ms on 2 cores.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOME = Path(tempfile.mkdtemp(prefix="gridmart-bench-redeem-"))
os.environ.update(GRIDMART_HOME=str(HOME), GRIDMART_DEPLOYMENTS_DIR=str(HOME / "deployments"))

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402

from ledger_node.chain import connect  # noqa: E402
from ledger_node.deploy import deploy  # noqa: E402
from ledger_node.devnet import Devnet, free_port  # noqa: E402
from marketplace.client import MarketClient  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", 4000))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 32))
TIME_LIMIT = float(os.environ.get("BENCH_SECONDS", 60))
PASSWORD = "bench"


async def fire(url: str, bodies: list[dict]) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    deadline = time.perf_counter() + TIME_LIMIT

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty() and time.perf_counter() < deadline:
            body = queue.get_nowait()
            t0 = time.perf_counter()
            r = await client.post("/redeem", json=body)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        return latencies, errors, time.perf_counter() - start


def main() -> None:
    net = Devnet(port=free_port(), workdir=HOME / "devnet").start()
    operator = Account.create()
    (HOME / "keystores").mkdir(parents=True)
    (HOME / "keystores" / "operator.json").write_text(json.dumps(Account.encrypt(operator.key, PASSWORD)))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GRIDMART_RPC_URL": net.url, "GRIDMART_WALLET_PASSWORD": PASSWORD,
           "GRIDMART_DOMAIN": f"127.0.0.1:{port}", "GRIDMART_SESSION_SECRET": "bench"}
    server = None
    try:
        deploy(connect(net.url), operator)
        server = subprocess.Popen([sys.executable, "-m", "marketplace.cli.main", "serve", "--port", str(port),
                                   "--log-level", "warning"],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        op, pub, sub = (MarketClient(url, a) for a in (operator, Account.create(), Account.create()))
        op.login()
        op.admit(pub.account.address, "publisher", b"p", ["publisher"])
        op.admit(sub.account.address, "subscriber", b"s", ["subscriber"])
        pub.login()
        sub.login()
        artifact = HOME / "small.csv"
        artifact.write_bytes(os.urandom(4096))
        listing = pub.publish(artifact, {"title": "small", "kind": "data"})
        op.approve(listing["certificate_id"])
        pub.set_plan(listing["product_id"], "month", 20)
        licence = sub.buy(listing["product_id"], "month")["licence_id"]

        t0 = time.perf_counter()
        bodies = [sub.sign_voucher(licence, nonce=n, valid_seconds=3600) for n in range(REQUESTS + 200)]
        sign_ms = (time.perf_counter() - t0) / len(bodies) * 1000
        asyncio.run(fire(url, bodies[REQUESTS:]))  # warm-up (connections, caches)
        latencies, errors, wall = asyncio.run(fire(url, bodies[:REQUESTS]))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        net.stop()

    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    figures = {"requests": len(latencies), "errors": errors, "concurrency": CONCURRENCY, "seconds": round(wall, 2),
               "req_per_s": round(len(latencies) / wall, 1), "p50_ms": round(q[49] * 1000, 2),
               "p99_ms": round(q[98] * 1000, 2), "max_ms": round(latencies[-1] * 1000, 2),
               "client_sign_ms_per_voucher": round(sign_ms, 3),
               "target_req_per_s": 1000, "target_p99_ms": 50}
    print(f"{'figure':<28} {'value':>10}")
    for key, value in figures.items():
        print(f"{key:<28} {value:>10}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
