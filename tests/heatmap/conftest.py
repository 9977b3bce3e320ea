"""Shared fixtures: one small generated city, rendered once, and a headless Chromium runner."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from analytics.heatmap import generate_city, render_all

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def city():
    return generate_city(meters=3_000, days=2, seed=7)


@pytest.fixture(scope="session")
def rendered(city, tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    return render_all(city.readings, city.ev_sessions, city.areas, out, period="daytype")


@pytest.fixture
def chromium(tmp_path):
    """Run Debian's chromium headless on a page; returns (returncode, stdout).

    Each call gets its own profile directory and process group, and the group is
    killed afterwards, so no browser process outlives the test.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is needed for the browser tests: apt-get install -y chromium")

    def run(url: str, *args: str, timeout: float = 60) -> tuple[int, str]:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args, url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        return proc.returncode, out

    return run
