"""Redemption throughput and latency for a time-plan licence on a small artifact.

A fresh Hardhat node and a `gridmart serve` process; the load generator, on loopback on the
same machine, posts pre-signed vouchers (each nonce once: a replay is refused) with a fixed
concurrency, bounded in requests and in time. The generator is `wrk` (C; Debian's package,
scripts/install_system_deps.sh) driven by bench/redeem_wrk.lua when it is installed, else an
asyncio + httpx one (BENCH_GENERATOR=python forces it); the figures name the one used.
Prints a table and, last, one JSON object with every figure.
Target: >= 1,000 req/s with p99 <= 50 ms on 2 cores.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
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

from ledger_node import typed_data  # noqa: E402
from ledger_node.chain import connect  # noqa: E402
from ledger_node.deploy import deploy  # noqa: E402
from ledger_node.devnet import Devnet, free_port  # noqa: E402
from marketplace.client import MarketClient  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", 10000))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 32))
TIME_LIMIT = float(os.environ.get("BENCH_SECONDS", 60))
WARMUP = int(os.environ.get("BENCH_WARMUP", 500))
WRK = shutil.which("wrk") if os.environ.get("BENCH_GENERATOR", "wrk") == "wrk" else None
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", 1))
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


def fire_wrk(url: str, bodies: list[dict], name: str) -> dict:
    """Run wrk over `bodies` (one thread per WRK_THREADS, CONCURRENCY connections in all)."""
    threads = min(WRK_THREADS, CONCURRENCY)
    quota = (len(bodies) - 2 * CONCURRENCY) // threads  # the rest covers the requests in flight at the stop
    path = HOME / f"{name}.jsonl"
    path.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies))
    cmd = [WRK, "-t", str(threads), "-c", str(CONCURRENCY), "-d", f"{int(TIME_LIMIT)}s", "--timeout", "30s",
           "-s", str(ROOT / "bench" / "redeem_wrk.lua"), url, "--", str(path), str(threads), str(quota)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    finished, result = 0, None
    try:
        for line in proc.stdout:  # wrk sleeps for -d even when every thread stopped: interrupt it
            if line.startswith("WRK_THREAD_DONE"):
                finished += 1
                if finished == threads:
                    proc.send_signal(signal.SIGINT)
            elif line.startswith("WRK_RESULT "):
                result = json.loads(line.removeprefix("WRK_RESULT "))
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if result is None:
        raise RuntimeError(f"wrk exited with {proc.returncode} and no result")
    return result


def sign_all(sub: MarketClient, licence: str, count: int) -> list[dict]:
    """`count` vouchers of `sub` for `licence`, nonces 0..count-1, signed locally."""
    cfg = sub.config()
    deadline, purpose = int(time.time()) + 3600, "download"
    out = []
    for n in range(count):
        message = {"licenceId": int(licence, 16), "nonce": n, "deadline": deadline,
                   "purpose": purpose.encode().ljust(32, b"\0")}
        sig = typed_data.sign(sub.account.key, "Redeem", message, cfg["chain_id"], cfg["contracts"]["Licensing"])
        out.append({"licence_id": licence, "nonce": n, "deadline": deadline, "purpose": purpose,
                    "signature": "0x" + sig.hex()})
    return out


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

        spare = CONCURRENCY * 2 if WRK else 0
        t0 = time.perf_counter()
        bodies = sign_all(sub, licence, REQUESTS + spare + WARMUP + spare)
        sign_ms = (time.perf_counter() - t0) / len(bodies) * 1000
        warm, measured = bodies[REQUESTS + spare:], bodies[:REQUESTS + spare]
        if WRK:
            fire_wrk(url, warm, "warm-up")  # connections, caches
            r = fire_wrk(url, measured, "measured")
            wall = r["wall_us"] / 1e6
            done, errors = r["responses"], r["non_200"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
            p50, p99, worst = r["p50_us"] / 1000, r["p99_us"] / 1000, r["max_us"] / 1000
        else:
            asyncio.run(fire(url, warm))  # warm-up (connections, caches)
            latencies, errors, wall = asyncio.run(fire(url, measured))
            latencies.sort()
            q = statistics.quantiles(latencies, n=100, method="inclusive")
            done, p50, p99, worst = len(latencies), q[49] * 1000, q[98] * 1000, latencies[-1] * 1000
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        net.stop()

    figures = {"generator": "wrk" if WRK else "python-httpx",
               "requests": done, "errors": errors, "concurrency": CONCURRENCY, "seconds": round(wall, 2),
               "req_per_s": round(done / wall, 1), "p50_ms": round(p50, 2),
               "p99_ms": round(p99, 2), "max_ms": round(worst, 2),
               "client_sign_ms_per_voucher": round(sign_ms, 3),
               "target_req_per_s": 1000, "target_p99_ms": 50}
    print(f"{'figure':<28} {'value':>10}")
    for key, value in figures.items():
        print(f"{key:<28} {value:>10}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
