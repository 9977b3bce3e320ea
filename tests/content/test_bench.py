"""bench/ingest.py runs end to end on a small file and ends with one JSON line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_bench_small_run(ipfs_daemon):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "ingest.py"), "--size-mib", "8", "--ipfs-api", ipfs_daemon.api()],
        capture_output=True, text=True, timeout=180, check=True,
    )
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    steps = summary["steps"]
    assert set(steps) == {"sha256", "embedded", "embedded_read", "embedded_encrypted", "daemon"}
    assert summary["cids_equal"] and summary["size_bytes"] == 8 * 1024 * 1024
    assert all(step["sha256_matches_baseline"] and step["mb_per_s"] > 0 and step["peak_rss_mb"] > 0 for step in steps.values())
    assert steps["embedded_read"]["bytes"] == summary["size_bytes"]
    assert any(line.startswith("embedded ") and "MB/s" in line for line in lines)
