"""Benchmark of theft detection at SGCC size: training time, peak memory, scoring throughput.

    .venv/bin/python bench/analytics.py [--customers 42372] [--days 1035] [--threads N]

Generates an SGCC-size province (seed 0), trains the theft pipeline on it (feature
extraction + gradient boosting + 3-fold threshold tuning), then scores a held-out
province (seed 1000, unseen customers). Memory is the process's resident set size,
sampled every 20 ms by a thread, so numpy buffers count (tracemalloc would slow the
run it measures). Prints a table; the last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from analytics.data.sgcc import SGCC_CUSTOMERS, SGCC_DAYS, generate_sgcc  # noqa: E402
from analytics.metrics import binary_report  # noqa: E402
from analytics.theft.features import extract_features  # noqa: E402
from analytics.theft.model import build_theft_pipeline, operating_threshold  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


@contextmanager
def measured(figures: dict, name: str):
    """Wall time, peak RSS and peak RSS above the phase's starting RSS, into figures."""
    start_rss, peak = rss_bytes(), [rss_bytes()]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_bytes())
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        peak[0] = max(peak[0], rss_bytes())
        figures[f"{name}_seconds"] = round(elapsed, 2)
        figures[f"{name}_peak_rss_mb"] = round(peak[0] / 2**20, 1)
        figures[f"{name}_added_rss_mb"] = round((peak[0] - start_rss) / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=SGCC_CUSTOMERS)
    parser.add_argument("--days", type=int, default=SGCC_DAYS)
    parser.add_argument("--score-customers", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=None, help="OpenMP/BLAS threads (default: library default)")
    args = parser.parse_args()

    figures: dict = {"customers": args.customers, "days": args.days, "score_customers": args.score_customers,
                     "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)}
    with threadpool_limits(args.threads):
        figures["openmp_threads"] = max((p["num_threads"] for p in threadpool_info()
                                         if p.get("user_api") == "openmp"), default=None)
        with measured(figures, "generate"):
            train = generate_sgcc(args.customers, args.days, seed=0)
        days = train.drop(columns=["CONS_NO", "FLAG"])
        figures["data_mb"] = round(days.memory_usage(deep=True).sum() / 2**20, 1)
        with measured(figures, "features"):
            extract_features(days)
        with measured(figures, "train"):
            model = build_theft_pipeline(seed=0).fit(days, train["FLAG"])
        del train, days

        held_out = generate_sgcc(args.score_customers, args.days, seed=1_000)
        held_days = held_out.drop(columns=["CONS_NO", "FLAG"])
        with measured(figures, "score"):
            score = model.predict_proba(held_days)[:, 1]
    figures["score_customers_per_second"] = round(args.score_customers / figures["score_seconds"], 1)
    figures["features_customers_per_second"] = round(args.customers / figures["features_seconds"], 1)
    report = binary_report(held_out["FLAG"], score, operating_threshold(model))
    figures.update({f"holdout_{k}": v for k, v in report.items() if k != "n"})

    rows = [
        ("customers x days (train)", f"{args.customers:,} x {args.days:,}"),
        ("daily-kWh matrix", f"{figures['data_mb']:,} MB"),
        ("generate", f"{figures['generate_seconds']} s"),
        ("feature extraction alone", f"{figures['features_seconds']} s "
                                     f"({figures['features_customers_per_second']:,} customers/s)"),
        ("train (features + HGB + 3-fold threshold tuning)", f"{figures['train_seconds']} s"),
        ("train peak RSS / added during train", f"{figures['train_peak_rss_mb']:,} MB / "
                                                f"{figures['train_added_rss_mb']:,} MB"),
        ("score throughput", f"{figures['score_customers_per_second']:,} customers/s "
                             f"({args.score_customers:,} in {figures['score_seconds']} s)"),
        ("held-out AUC / MAP@100", f"{figures['holdout_auc']} / {figures['holdout_map_at_100']}"),
        ("held-out precision / recall @ threshold",
         f"{figures['holdout_precision']} / {figures['holdout_recall']} @ {figures['holdout_threshold']}"),
        ("OpenMP threads / CPUs / load avg", f"{figures['openmp_threads']} / {figures['cpu_count']} / "
                                             f"{figures['load_average_1min']}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("theft detection benchmark")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
