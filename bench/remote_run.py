"""Benchmark: the latency a sandboxed remote run adds, against the same run in-process.

Two products as the marketplace remote-runs them: theft detection (a model trained on 400
customers, scoring a posted table of 25) and the heat map (a generated city of 3,000
meters, one day). Each run gets a fresh work folder holding the artifact and the input,
exactly as services.runner writes it; "in-process" calls the worker
(analytics.remote_run.main) in this process, already warm (its imports done, as in a
server that ran it before); "sandboxed" is services.runner.run_in_sandbox, i.e. a new
``python -I -m analytics.remote_run`` as nobody in new namespaces with resource limits,
which imports pandas/scikit-learn (and datashader for the heat map) every time.
Also timed: the launcher alone (``python -I -c pass`` in the sandbox). Medians of
--repeat runs, all in the same process run. Prints a table; last line: one JSON object.

Run: .venv/bin/python bench/remote_run.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from analytics import registry, remote_run  # noqa: E402
from analytics.data.sgcc import generate_sgcc  # noqa: E402
from analytics.heatmap import generate_city  # noqa: E402
from ledger_node.compute import sandbox  # noqa: E402
from marketplace.services import runner  # noqa: E402


def theft_case(folder: Path) -> tuple[str, bytes, bytes]:
    with threadpool_limits(1):
        model_path, _ = registry.train("theft-detection", folder / "model", size=400, seed=3)
    bundle = io.BytesIO()
    with tarfile.open(fileobj=bundle, mode="w") as tar:
        for f in model_path.parent.iterdir():
            tar.add(f, arcname=f.name)
    return "theft-detection", bundle.getvalue(), generate_sgcc(25, seed=11).to_csv(index=False).encode()


def heatmap_case(folder: Path) -> tuple[str, bytes, bytes]:
    generate_city(meters=3000, days=1, seed=4).save(folder / "city", fmt="csv")
    posted = io.BytesIO()
    with zipfile.ZipFile(posted, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in (folder / "city").iterdir():
            zf.write(f, f.name)
    return "heatmap", json.dumps({"period": "daytype", "min_count": 5}).encode(), posted.getvalue()


def prepared(case: tuple[str, bytes, bytes]) -> Path:
    name, artifact, posted = case
    work = sandbox.new_workdir()
    (work / "job.json").write_text(json.dumps({"runner": name}))
    (work / "artifact").write_bytes(artifact)
    (work / "input").write_bytes(posted)
    for sub in ("home", "tmp", "out"):
        (work / sub).mkdir()
    return work


def in_process(case) -> float:
    work = prepared(case)
    try:
        started = time.perf_counter()
        with threadpool_limits(1):  # the sandbox's one thread, so both sides do the same work
            remote_run.main(work)
        elapsed = time.perf_counter() - started
        assert json.loads((work / "out" / "status.json").read_text())["ok"]
        return elapsed
    finally:
        sandbox.remove_workdir(work)


def sandboxed(case) -> float:
    work = prepared(case)
    try:
        started = time.perf_counter()
        runner.run_in_sandbox(work, sandbox.Limits())
        return time.perf_counter() - started
    finally:
        sandbox.remove_workdir(work)


def launcher_only() -> float:
    work = sandbox.new_workdir()
    try:
        started = time.perf_counter()
        sandbox.run_python(["-c", "pass"], work)
        return time.perf_counter() - started
    finally:
        sandbox.remove_workdir(work)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"theft-detection": theft_case(Path(tmp)), "heatmap": heatmap_case(Path(tmp))}
        figures = {"isolation": sandbox.isolation().describe(), "repeat": args.repeat,
                   "launcher_only_s": statistics.median(launcher_only() for _ in range(args.repeat))}
        for name, case in cases.items():
            in_process(case)  # warm: imports, numba's compilation of the heat map kernels
            inside = [in_process(case) for _ in range(args.repeat)]
            outside = [sandboxed(case) for _ in range(args.repeat)]
            figures[name] = {"in_process_s": statistics.median(inside), "sandboxed_s": statistics.median(outside),
                             "in_process_all_s": inside, "sandboxed_all_s": outside}
    figures["load_average_1min"] = os.getloadavg()[0]
    print(f"{figures['isolation']}; load average {figures['load_average_1min']:.2f}")
    print(f"launcher alone (python -I -c pass): {figures['launcher_only_s']:.3f} s")
    print(f"{'product':<18}{'in-process (warm)':>20}{'sandboxed':>12}{'added':>10}")
    for name in cases:
        f = figures[name]
        print(f"{name:<18}{f['in_process_s']:>18.3f} s{f['sandboxed_s']:>10.3f} s"
              f"{f['sandboxed_s'] - f['in_process_s']:>8.3f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
