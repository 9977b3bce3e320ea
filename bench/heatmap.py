"""Heat-map bench: 10 M readings -> PNGs + HTML + tables, time and peak RSS per step.

Run: .venv/bin/python bench/heatmap.py [--readings 10000000] [--period hour]
Prints a table, then one JSON line with every figure. CPU time is printed next to
wall time because the box is shared: on a busy machine wall time alone misleads. Numba compiles datashader's
kernels on first use (~4 s of CPU); warm_up() does that on a tiny city before timing, the
way a long-running marketplace worker would have it done already.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.heatmap import generate_city, warm_up  # noqa: E402
from analytics.heatmap.aggregate import aggregate  # noqa: E402
from analytics.heatmap.html import write_html  # noqa: E402
from analytics.heatmap.loaders import load_dir  # noqa: E402
from analytics.heatmap.periods import period_kind  # noqa: E402
from analytics.heatmap.png import render_pngs  # noqa: E402
from analytics.heatmap.privacy import release  # noqa: E402
from analytics.heatmap.schema import check_areas, check_ev, check_readings  # noqa: E402
from analytics.heatmap.table import write_tables  # noqa: E402

TARGET_S = 3.0  # aggregation + PNG


def _reset_peak() -> bool:
    """Zero the kernel's peak-RSS mark (VmHWM) so each step reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=1, help="days per meter; meters = readings / (96 * days)")
    ap.add_argument("--period", default="hour")
    ap.add_argument("--cell-m", type=float, default=250.0)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--out", help="keep outputs here (default: a temporary directory)")
    args = ap.parse_args()
    meters = math.ceil(args.readings / (96 * args.days))
    per_step = _reset_peak()
    rows: list[tuple[str, float, float, float]] = []

    def step(name: str, fn):
        _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        rows.append((name, time.perf_counter() - t0, time.process_time() - c0, _peak_mib()))
        return value

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        data = out / "input"
        city = step("generate city", lambda: generate_city(meters=meters, days=args.days, seed=0))
        step("write parquet", lambda: city.save(data, "parquet"))
        del city
        step("warm-up (numba JIT)", warm_up)
        tables = step("load parquet", lambda: load_dir(data))
        checked = step("check inputs", lambda: (check_readings(tables["readings"]), check_ev(tables["ev_sessions"]),
                                                check_areas(tables["areas"])))
        n_readings = len(checked[0])
        del tables
        rel = step("aggregate + privacy", lambda: release(
            aggregate(*checked, period_kind(args.period), cell_m=args.cell_m), args.min_count))
        pngs = step("PNG maps", lambda: render_pngs(rel, out / "png"))
        step("HTML", lambda: write_html(rel, out / "heatmap.html"))
        step("tables", lambda: write_tables(rel, out))
        html_mib = (out / "heatmap.html").stat().st_size / 2 ** 20

    figures = {name: (seconds, cpu) for name, seconds, cpu, _ in rows}
    agg_png = figures["aggregate + privacy"][0] + figures["PNG maps"][0]
    agg_png_cpu = figures["aggregate + privacy"][1] + figures["PNG maps"][1]
    print(f"heat-map bench: {n_readings:,} readings, {meters:,} meters, period={args.period}, "
          f"grid {rel.grid.width}x{rel.grid.height} ({args.cell_m:g} m), {len(pngs)} PNGs, "
          f"HTML {html_mib:.1f} MiB, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")
    print(f"{'step':<22}{'wall (s)':>10}{'CPU (s)':>10}{'peak RSS (MiB)':>16}")
    for name, seconds, cpu, peak in rows:
        print(f"{name:<22}{seconds:>10.2f}{cpu:>10.2f}{peak:>16.0f}")
    print(f"{'aggregate + PNG':<22}{agg_png:>10.2f}{agg_png_cpu:>10.2f}   target <= {TARGET_S:g} s wall: "
          f"{'met' if agg_png <= TARGET_S else 'MISSED'}")
    if not per_step:
        print("(peak RSS is the process peak so far: /proc/self/clear_refs is not writable here)")
    print(json.dumps({
        "readings": n_readings, "meters": meters, "period": args.period, "pngs": len(pngs),
        "grid": [rel.grid.width, rel.grid.height], "html_mib": round(html_mib, 2),
        "steps": {name: {"s": round(s, 3), "cpu_s": round(c, 3), "peak_rss_mib": round(p, 1)}
                  for name, s, c, p in rows},
        "aggregate_png_s": round(agg_png, 3), "aggregate_png_cpu_s": round(agg_png_cpu, 3),
        "target_s": TARGET_S, "met": agg_png <= TARGET_S,
        "per_step_peak": per_step, "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
