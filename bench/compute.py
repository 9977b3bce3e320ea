"""Benchmark: the compute layer (docs/compute.md) on real parts: a compute node subprocess
(`ledger_node.compute.process.ComputeNode`, workers = 2 for the 2-core target machine) in
a fresh home (nothing cached), bundles packed by `ledger_node.compute.bundle.pack`, jobs
submitted over its HTTP API, and a marketplace (Hardhat devnet, deployed contracts,
`gridmart serve`) beside it for the catalogue's latency.

Figures (times are wall clock on this machine; "entry start" is the first line of the
bundle's entry point, which records time.time() and writes it to GRIDMART_OUTPUT):

* env_build_cold_s: a bundle pinning numpy (the version in this venv) is the first to
  need that environment: (its submit → entry start) − (the same bundle's submit → entry
  start once the environment is cached). pip resolves through the machine's configured
  indexes (the node passes its pip configuration on, with no pip cache); where one of
  them is a local mirror, the wheel comes from disk, so the figure has no download in it.
  Also shown: its `building` phase as polled on GET /jobs/{id} (every 20 ms).
* env_build_cached_s: the same requirements a second time: (submit → entry start) −
  job_start_s, i.e. what a cached environment still adds over a dependency-free bundle.
* job_start_s: submit → entry start of a dependency-free bundle, median of --starts runs
  (after one warm-up job that builds the empty environment every bundle without
  requirements shares).
* overhead_pct_10s_job (and _outside_loop): a bundle whose entry point runs a fixed pure-Python loop
  (calibrated here to ~--burn seconds; it times itself and prints it) through the node
  (submit → the node's finished_at) against the same file run directly by the interpreter of
  the environment the node built for it (`<env>/bin/python -E -s main.py`, start → exit; not
  this project's venv: the same interpreter with other site-packages runs the loop ~5 %
  faster or slower from memory layout alone): (node − direct) / direct × 100, on each of
  --repeat pairs (their order alternating), then their median. Also shown: each side's time outside the
  loop (wall − the loop's own time), which separates the node's fixed cost from the loop
  simply running slower or faster in the sandbox (this machine drifts by ~10 %).
* jobs_per_min_small: --jobs tiny jobs submitted back to back, first submit → last
  finished_at.
* catalogue_p99_ms_no_job / _during_job / _during_2_jobs: GET /products on the marketplace
  (a shelf of --products listings), one client in a closed loop for --hammer seconds,
  first with the node idle, then while one, then two CPU-bound jobs run on the node.

Prints a table; last line: one JSON object with every figure. Progress goes to stderr.

Run: .venv/bin/python bench/compute.py [--quick]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOME = Path(tempfile.mkdtemp(prefix="gridmart-bench-compute-"))
os.environ.update(GRIDMART_HOME=str(HOME / "gridmart"), GRIDMART_DEPLOYMENTS_DIR=str(HOME / "deployments"))

import httpx  # noqa: E402
import numpy  # noqa: E402
from eth_account import Account  # noqa: E402

from ledger_node.chain import connect  # noqa: E402
from ledger_node.compute import bundle, envs, sandbox  # noqa: E402
from ledger_node.compute.process import ComputeNode  # noqa: E402
from ledger_node.deploy import deploy  # noqa: E402
from ledger_node.devnet import Devnet, free_port  # noqa: E402
from marketplace.client import MarketClient  # noqa: E402

FINISHED = ("done", "failed", "cancelled")
PASSWORD = "bench"
WORKERS = 2

#: every entry point starts by stamping the time, before anything else is imported
STAMP = "import time\nSTART = time.time()\nimport json, os, sys\n"

TINY = STAMP + """
with open(os.environ["GRIDMART_OUTPUT"], "w") as fh:
    json.dump({"start": START}, fh)
"""

WITH_NUMPY = STAMP + """
import numpy
with open(os.environ["GRIDMART_OUTPUT"], "w") as fh:
    json.dump({"start": START, "numpy": numpy.__version__, "sum": float(numpy.arange(10).sum())}, fh)
"""

#: a fixed amount of pure-Python work ({"iterations": n}) or work for {"seconds": s} of CPU
BURN = STAMP + """
def chunk(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1000003
    return x

source = os.environ.get("GRIDMART_INPUT") or (sys.argv[1] if len(sys.argv) > 1 else "")
job = json.loads(open(source).read()) if source else {"iterations": 1_000_000}
t0, c0 = time.perf_counter(), time.process_time()
if "iterations" in job:
    x = chunk(job["iterations"])
else:
    while time.process_time() - c0 < job["seconds"]:
        x = chunk(1_000_000)
        print("progress: %.2f" % min(1.0, (time.process_time() - c0) / job["seconds"]), flush=True)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print("burn: %.3f s wall, %.3f s cpu" % (wall, cpu), flush=True)
out = os.environ.get("GRIDMART_OUTPUT") or (sys.argv[2] if len(sys.argv) > 2 else os.devnull)
with open(out, "w") as fh:
    json.dump({"start": START, "burn_wall_s": wall, "burn_cpu_s": cpu, "x": x}, fh)
"""


def say(message: str) -> None:
    print(f"[bench/compute {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def folder_of(code: str, requirements: list[str] | None = None, resources: dict | None = None) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bundle-src-", dir=HOME))
    manifest = {"format": bundle.FORMAT, "name": "bench", "version": "1.0.0", "entry_point": "main.py",
                "requirements": requirements or [], "output": {"media_type": "application/json"},
                "resources": {"wall_seconds": 300, "cpu_seconds": 300, "memory_mb": 1024, **(resources or {})}}
    (folder / bundle.MANIFEST).write_text(json.dumps(manifest))
    (folder / "main.py").write_text(textwrap.dedent(code))
    return folder


def make_bundle(code: str, requirements: list[str] | None = None, resources: dict | None = None) -> bytes:
    return bundle.pack(folder_of(code, requirements, resources))


def stamp(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


class Client:
    """The few calls of the node's API the bench needs (docs/compute.md)."""

    def __init__(self, node: ComputeNode):
        self.http = httpx.Client(base_url=node.url, headers=node.headers, timeout=60)

    def submit(self, archive: bytes, input: bytes | None = None) -> str:
        spec = {"ref": secrets.token_hex(8), "bundle_sha256": hashlib.sha256(archive).hexdigest(),
                "input_sha256": hashlib.sha256(input).hexdigest() if input is not None else None}
        files = {"bundle": ("bundle.tar.gz", archive)}
        if input is not None:
            files["input"] = ("input", input)
        r = self.http.post("/jobs", data={"spec": json.dumps(spec)}, files=files)
        if r.status_code != 201:
            raise RuntimeError(f"POST /jobs answered {r.status_code}: {r.text}")
        return r.json()["id"]

    def job(self, job_id: str) -> dict:
        return self.http.get(f"/jobs/{job_id}").json()

    def wait(self, job_id: str, states=FINISHED, timeout: float = 600, seen: dict | None = None,
             poll: float = 0.02) -> dict:
        """Poll every `poll` s; `seen` gets the time each state was first observed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if seen is not None:
                seen.setdefault(job["state"], time.time())
            if job["state"] in states:
                return job
            time.sleep(poll)
        raise RuntimeError(f"job {job_id} still {job['state']} after {timeout:.0f}s")

    def result(self, job_id: str) -> dict:
        return self.http.get(f"/jobs/{job_id}/result").json()

    def logs(self, job_id: str) -> str:
        return self.http.get(f"/jobs/{job_id}/logs").text

    def cancel(self, job_id: str) -> dict:
        return self.http.post(f"/jobs/{job_id}/cancel").json()

    def run(self, archive: bytes, input: bytes | None = None, seen: dict | None = None,
            poll: float = 0.02) -> tuple[float, dict, dict]:
        """(submit time, final job, its output) of a job that must finish done."""
        t0 = time.time()
        job_id = self.submit(archive, input)
        job = self.wait(job_id, seen=seen, poll=poll)
        if job["state"] != "done":
            raise RuntimeError(f"job {job_id} {job['state']}: {job['error']}\n{self.logs(job_id)[-2000:]}")
        return t0, job, self.result(job_id)


# ----------------------------------------------------------------- the node alone

def env_builds(client: Client) -> dict:
    pins = [f"numpy=={numpy.__version__}"]
    archive = make_bundle(WITH_NUMPY, pins)
    say(f"cold environment build: {pins} (pip through the configured index, no cache)")
    seen: dict = {}
    t0, job, out = client.run(archive, seen=seen)
    cold_start = out["start"] - t0
    building = (seen.get("running", seen.get("done")) - seen["building"]) if "building" in seen else None
    say(f"  submit → entry start {cold_start:.2f} s (building seen for {building or 0:.2f} s); again, cached")
    seen2: dict = {}
    t1, job2, out2 = client.run(archive, seen=seen2)
    assert job2["env_hash"] == job["env_hash"] and out2["numpy"] == numpy.__version__
    return {"requirements": pins, "env_hash": job["env_hash"], "cold_submit_to_start_s": cold_start,
            "cold_building_phase_polled_s": building, "cached_submit_to_start_s": out2["start"] - t1,
            "cached_saw_building": "building" in seen2}


def job_starts(client: Client, n: int) -> dict:
    archive = make_bundle(TINY)
    say("warm-up: the first dependency-free job builds the empty environment")
    t0, _, out = client.run(archive)
    first = out["start"] - t0
    starts, totals = [], []
    for _ in range(n):
        t0, job, out = client.run(archive)
        starts.append(out["start"] - t0)
        totals.append(stamp(job["finished_at"]) - t0)
    say(f"job start: median {statistics.median(starts):.3f} s of {n}")
    return {"first_job_with_empty_env_build_start_s": first, "job_start_all_s": starts,
            "job_start_s": statistics.median(starts), "job_total_s": statistics.median(totals)}


def calibrate(seconds: float) -> int:
    """Iterations of BURN's loop that take about `seconds` in this interpreter."""
    namespace: dict = {}
    exec(BURN.split("source =")[0], namespace)
    n = 200_000
    while True:
        t0 = time.perf_counter()
        namespace["chunk"](n)
        took = time.perf_counter() - t0
        if took > 0.5:
            return int(n * seconds / took)
        n *= 4


def overhead(client: Client, node: ComputeNode, seconds: float, repeat: int) -> dict:
    """`repeat` pairs of the same loop directly and through the node, the pair's order
    alternating (this machine's speed drifts by ~10 % from minute to minute); the figure is
    the median of the pairs' overheads. "Directly" is the same file run by the interpreter of
    the environment the node built for this bundle (its venv, found by the job's env_hash):
    the same interpreter in a different venv (this project's, with its site-packages) runs
    this loop ~5 % faster or slower for reasons of memory layout alone, which is not the
    node's cost."""
    iterations = calibrate(seconds)
    payload = json.dumps({"iterations": iterations}).encode()
    folder = folder_of(BURN)
    archive = bundle.pack(folder)
    (HOME / "burn.json").write_bytes(payload)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1"}
    say("overhead: one short run through the node to find its environment for the bundle")
    _, job, _ = client.run(archive, json.dumps({"iterations": 1000}).encode())
    python = envs.path(node.home, job["env_hash"]) / "bin" / "python"
    direct, node_, direct_burn, node_burn, direct_cpu, node_cpu, logs = [], [], [], [], [], [], []

    def run_direct() -> None:
        t0 = time.perf_counter()
        subprocess.run([str(python), "-E", "-s", "main.py", str(HOME / "burn.json"), str(HOME / "burn-out.json")],
                       cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
        direct.append(time.perf_counter() - t0)
        inside = json.loads((HOME / "burn-out.json").read_text())
        direct_burn.append(inside["burn_wall_s"])
        direct_cpu.append(inside["burn_cpu_s"])

    def run_node() -> None:
        t0, job, out = client.run(archive, payload, poll=0.5)  # finished_at is the node's: no need to poll fast
        node_.append(stamp(job["finished_at"]) - t0)
        node_burn.append(out["burn_wall_s"])
        node_cpu.append(out["burn_cpu_s"])
        logs.append(client.logs(job["id"]).strip().splitlines()[-1])

    for i in range(repeat):
        first, second = (run_direct, run_node) if i % 2 == 0 else (run_node, run_direct)
        say(f"burn {i + 1}/{repeat}: {iterations:,} iterations (~{seconds:g} s) "
            f"{'directly, then through the node' if i % 2 == 0 else 'through the node, then directly'}")
        first()
        second()
        say(f"  direct {direct[-1]:.2f} s (burn {direct_burn[-1]:.2f} s wall, {direct_cpu[-1]:.2f} s cpu), "
            f"node {node_[-1]:.2f} s ({logs[-1]})")
    d, n = statistics.median(direct), statistics.median(node_)
    pairs = [(b - a) / a * 100 for a, b in zip(direct, node_)]
    outside_node = statistics.median(a - b for a, b in zip(node_, node_burn))
    outside_direct = statistics.median(a - b for a, b in zip(direct, direct_burn))
    return {"iterations": iterations, "repeat": repeat, "direct_python": str(python),
            "direct_wall_all_s": direct, "node_wall_all_s": node_,
            "direct_burn_wall_all_s": direct_burn, "node_burn_wall_all_s": node_burn, "node_log_last_lines": logs,
            "direct_wall_s": d, "node_wall_s": n, "direct_burn_wall_s": statistics.median(direct_burn),
            "node_burn_wall_s": statistics.median(node_burn),
            "direct_burn_cpu_all_s": direct_cpu, "node_burn_cpu_all_s": node_cpu,
            "node_minus_burn_s": outside_node, "direct_minus_burn_s": outside_direct,
            # per pair, then the median: this machine's speed drifts by 10-25 % from minute to minute,
            # more than the node's cost, and a pair's two runs are seconds apart
            "overhead_pct_pairs": pairs, "overhead_pct_10s_job": statistics.median(pairs),
            "overhead_pct_10s_job_outside_loop": (outside_node - outside_direct) / d * 100}


def throughput(client: Client, n: int) -> dict:
    archive = make_bundle(TINY)
    say(f"throughput: {n} tiny jobs submitted back to back, {WORKERS} workers")
    t0 = time.time()
    ids = [client.submit(archive) for _ in range(n)]
    submitted = time.time() - t0
    jobs = [client.wait(i) for i in ids]
    bad = [j for j in jobs if j["state"] != "done"]
    if bad:
        raise RuntimeError(f"{len(bad)} of {n} tiny jobs did not finish done: {bad[0]['error']}")
    span = max(stamp(j["finished_at"]) for j in jobs) - t0
    say(f"  {n} jobs in {span:.2f} s")
    return {"jobs": n, "submit_all_s": submitted, "span_s": span, "jobs_per_min_small": n / span * 60}


# ----------------------------------------------------------------- the marketplace beside it

def marketplace(products: int):
    """Devnet, contracts, `gridmart serve` with a shelf of `products` approved listings."""
    say("starting a devnet, deploying, serving the marketplace")
    net = Devnet(port=free_port(), workdir=HOME / "devnet").start()
    server = None
    try:
        operator = Account.create()
        keystores = HOME / "gridmart" / "keystores"
        keystores.mkdir(parents=True)
        (keystores / "operator.json").write_text(json.dumps(Account.encrypt(operator.key, PASSWORD)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GRIDMART_RPC_URL": net.url, "GRIDMART_WALLET_PASSWORD": PASSWORD,
               "GRIDMART_DOMAIN": f"127.0.0.1:{port}", "GRIDMART_SESSION_SECRET": "bench"}
        deploy(connect(net.url), operator)
        server = subprocess.Popen([sys.executable, "-m", "marketplace.cli.main", "serve", "--port", str(port),
                                   "--log-level", "warning"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=open(HOME / "serve.log", "wb"))
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError(f"gridmart serve exited with {server.returncode}; see {HOME / 'serve.log'}")
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        op, pub = MarketClient(url, operator), MarketClient(url, Account.create())
        op.login()
        op.admit(pub.account.address, "publisher", b"p", ["publisher"])
        pub.login()
        for i in range(products):
            artifact = HOME / f"data-{i}.csv"
            artifact.write_text("meter,kwh\n" + "".join(f"m{j},{j * 0.5}\n" for j in range(50 + i)))
            listing = pub.publish(artifact, {"title": f"bench data {i}", "kind": "data", "tags": ["bench"]})
            op.approve(listing["certificate_id"])
        return net, server, url
    except BaseException:
        stop_server(server)
        net.stop()
        raise


def stop_server(server: subprocess.Popen | None) -> None:
    if server is not None and server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def hammer(url: str, seconds: float) -> dict:
    latencies, errors, size = [], 0, 0
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(5):
            http.get("/products")  # connection, caches
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = http.get("/products")
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
            else:
                size = len(r.json())
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": len(latencies), "errors": errors, "products_listed": size,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "max_ms": latencies[-1] * 1000,
            "req_per_s": len(latencies) / seconds}


def catalogue(client: Client, url: str, seconds: float) -> dict:
    burn = make_bundle(BURN)
    payload = json.dumps({"seconds": seconds + 30}).encode()  # outlasts the hammering; cancelled after
    out = {}
    say(f"GET /products for {seconds:g} s with the node idle")
    out["no_job"] = hammer(url, seconds)
    for n, name in ((1, "during_job"), (2, "during_2_jobs")):
        ids = [client.submit(burn, payload) for _ in range(n)]
        for job_id in ids:
            client.wait(job_id, states=("running", *FINISHED))
        time.sleep(0.5)  # the entry points are past their start
        say(f"GET /products for {seconds:g} s while {n} CPU-bound job(s) run")
        out[name] = hammer(url, seconds)
        states = [client.job(job_id)["state"] for job_id in ids]
        for job_id in ids:
            client.cancel(job_id)
        if states != ["running"] * n:
            raise RuntimeError(f"the CPU-bound jobs were not running throughout: {states}")
        out[name]["jobs_running_at_end"] = n
    return out


#: the node's TMPDIR, where its sandbox work folders go (a folder of this run's own, so that
#: what is left in it afterwards is this node's; 0711 like /tmp's entries need for uid 65534)
NODE_TMP = Path(tempfile.mkdtemp(prefix="gridmart-bench-compute-tmp-"))
os.chmod(NODE_TMP, 0o711)


def leftovers() -> list[str]:
    return sorted(str(p) for p in NODE_TMP.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a fast run: shorter burns, fewer jobs")
    parser.add_argument("--burn", type=float, help="seconds of the overhead job (default 10, quick 2)")
    parser.add_argument("--repeat", type=int, help="direct/node pairs of the overhead job (default 5, quick 1)")
    parser.add_argument("--starts", type=int, help="job starts to take the median of (default 10, quick 3)")
    parser.add_argument("--jobs", type=int, help="tiny jobs for the throughput (default 30, quick 10)")
    parser.add_argument("--hammer", type=float, help="seconds of each GET /products phase (default 10, quick 3)")
    parser.add_argument("--products", type=int, help="listings on the shelf (default 10, quick 3)")
    args = parser.parse_args()
    q = args.quick
    burn, repeat = args.burn or (2 if q else 10), args.repeat or (1 if q else 5)
    starts, jobs = args.starts or (3 if q else 10), args.jobs or (10 if q else 30)
    seconds, products = args.hammer or (3 if q else 10), args.products or (3 if q else 10)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    figures: dict = {"load_average_1min_before": load_before, "isolation": sandbox.isolation().describe(),
                     "workers": WORKERS, "cores": os.cpu_count(),
                     "python": sys.version.split()[0], "quick": q}
    node = ComputeNode(port=free_port(), home=HOME / "node", token=secrets.token_hex(16), workers=WORKERS,
                       env={"TMPDIR": str(NODE_TMP)})
    net = server = None
    try:
        node.start()
        client = Client(node)
        figures["starts"] = job_starts(client, starts)
        figures["env"] = env_builds(client)
        figures["overhead"] = overhead(client, node, burn, repeat)
        figures["throughput"] = throughput(client, jobs)
        net, server, url = marketplace(products)
        figures["catalogue"] = catalogue(client, url, seconds)
    finally:
        stop_server(server)
        if net is not None:
            net.stop()
        node.stop()
    left = leftovers()
    node_log = node.log_path.read_text(errors="replace").splitlines() if node.log_path.exists() else []
    figures["node_log_lines"] = len(node_log)
    figures["node_log_problems"] = [line for line in node_log
                                    if any(w in line for w in ("Traceback", "ERROR", "Error", "WARNING"))][:20]
    shutil.rmtree(HOME, ignore_errors=True)
    shutil.rmtree(NODE_TMP, ignore_errors=True)

    env, st, ov, th, cat = (figures[k] for k in ("env", "starts", "overhead", "throughput", "catalogue"))
    figures.update({
        "env_build_cold_s": env["cold_submit_to_start_s"] - env["cached_submit_to_start_s"],
        "env_build_cached_s": env["cached_submit_to_start_s"] - st["job_start_s"],
        "job_start_s": st["job_start_s"],
        "overhead_pct_10s_job": ov["overhead_pct_10s_job"],
        "overhead_pct_10s_job_outside_loop": ov["overhead_pct_10s_job_outside_loop"],
        "jobs_per_min_small": th["jobs_per_min_small"],
        "catalogue_p99_ms_no_job": cat["no_job"]["p99_ms"],
        "catalogue_p99_ms_during_job": cat["during_job"]["p99_ms"],
        "catalogue_p99_ms_during_2_jobs": cat["during_2_jobs"]["p99_ms"],
        "leftover_workdirs": left, "bench_seconds": time.perf_counter() - started,
        "load_average_1min": os.getloadavg()[0],
    })
    print(f"{figures['isolation']}; {WORKERS} workers on {figures['cores']} cores; python {figures['python']}")
    rows = [
        ("env_build_cold_s", figures["env_build_cold_s"], "s",
         f"{env['requirements'][0]}; building phase polled {env['cold_building_phase_polled_s'] or 0:.2f} s"),
        ("env_build_cached_s", figures["env_build_cached_s"], "s",
         f"submit→start {env['cached_submit_to_start_s']:.3f} s vs {st['job_start_s']:.3f} s without requirements"),
        ("job_start_s", st["job_start_s"], "s",
         f"median of {len(st['job_start_all_s'])}; min {min(st['job_start_all_s']):.3f}, "
         f"max {max(st['job_start_all_s']):.3f}; submit→done {st['job_total_s']:.3f} s"),
        ("overhead_pct_10s_job", ov["overhead_pct_10s_job"], "%",
         f"median of {ov['repeat']} pairs {[round(x, 1) for x in ov['overhead_pct_pairs']]}; medians: node {ov['node_wall_s']:.2f} s (burn {ov['node_burn_wall_s']:.2f}) vs direct "
         f"{ov['direct_wall_s']:.2f} s (burn {ov['direct_burn_wall_s']:.2f}); outside the burn: node "
         f"{ov['node_minus_burn_s']:.3f} s, direct {ov['direct_minus_burn_s']:.3f} s"),
        ("overhead_pct_10s_job_outside_loop", ov["overhead_pct_10s_job_outside_loop"], "%",
         f"(node − direct time outside the loop) / direct wall; loop cpu: node "
         f"{statistics.median(ov['node_burn_cpu_all_s']):.2f} s, "
         f"direct {statistics.median(ov['direct_burn_cpu_all_s']):.2f} s"),
        ("jobs_per_min_small", th["jobs_per_min_small"], "/min", f"{th['jobs']} jobs in {th['span_s']:.2f} s"),
    ]
    for name, key in (("no_job", "catalogue_p99_ms_no_job"), ("during_job", "catalogue_p99_ms_during_job"),
                      ("during_2_jobs", "catalogue_p99_ms_during_2_jobs")):
        c = cat[name]
        rows.append((key, c["p99_ms"], "ms", f"p50 {c['p50_ms']:.1f} ms, max {c['max_ms']:.1f} ms, "
                     f"{c['requests']} requests ({c['req_per_s']:.0f}/s), {c['products_listed']} products, "
                     f"{c['errors']} errors"))
    print(f"{'figure':<32}{'value':>10}  unit  notes")
    for name, value, unit, note in rows:
        print(f"{name:<32}{value:>10.3f}  {unit:<5} {note}")
    print(f"node log: {figures['node_log_lines']} lines, {len(figures['node_log_problems'])} with an error or warning")
    print(f"leftover work folders: {len(left)}; whole run {figures['bench_seconds']:.0f} s; "
          f"load average {load_before:.2f} before, {figures['load_average_1min']:.2f} after "
          f"(on {figures['cores']} cores: anything above the bench's own ~2 is other work on the machine)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
