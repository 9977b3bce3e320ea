"""`gridmart heatmap generate` and `render` as a user runs them, through the root CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _gridmart(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "marketplace.cli.main", "heatmap", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def test_generate_then_render(tmp_path):
    data, out = tmp_path / "city", tmp_path / "out"
    done = _gridmart("generate", "--out", str(data), "--meters", "600", "--days", "2", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in data.iterdir()) == ["areas.csv", "ev_sessions.csv", "readings.csv"]

    done = _gridmart("render", "--input", str(data), "--period", "daytype", "--out", str(out), "--min-count", "3")
    assert done.returncode == 0, done.stderr
    assert "PNG maps" in done.stderr and "100%" in done.stderr  # the progress bar ran
    assert len(list((out / "png").glob("*.png"))) == 10
    for name in ("heatmap.html", "cells.csv", "areas.csv", "weakest.csv", "manifest.json"):
        assert (out / name).stat().st_size > 0, name


def test_errors_are_one_line_and_exit_1(tmp_path):
    done = _gridmart("render", "--input", str(tmp_path), "--period", "fortnight", "--out", str(tmp_path / "o"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: heatmap:"), done.stderr
