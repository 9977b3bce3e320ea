"""The page runs in Debian's headless Chromium, draws the map, and its controls take effect."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image


def _body(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'data-([a-z]+)="([^"]*)"', tag))


def test_page_draws_in_headless_chromium(rendered, chromium, tmp_path):
    url = Path(rendered["html"]).resolve().as_uri()
    code, dom = chromium(url, "--dump-dom")
    assert code == 0
    body = _body(dom)
    assert body["ready"] == "1", "the page script did not finish"
    assert int(body["drawn"]) > 50
    assert body["layer"] == "load_kw"

    shot = tmp_path / "shot.png"
    code, _ = chromium(url, f"--screenshot={shot}", "--window-size=1280,900")
    assert code == 0 and shot.exists()
    image = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    map_area = image[140:700, 16:740]  # where the canvas sits in a 1280x900 window
    assert map_area.std() > 25, "the map area is blank"
    assert len(np.unique(map_area.reshape(-1, 3), axis=0)) > 20


def test_hash_selects_layer_and_period(rendered, chromium):
    url = Path(rendered["html"]).resolve().as_uri() + "#layer=ev_share&period=1"
    code, dom = chromium(url, "--dump-dom")
    assert code == 0
    body = _body(dom)
    assert (body["ready"], body["layer"], body["period"]) == ("1", "ev_share", "1")
    assert re.search(r'data-layer="ev_share"[^>]*aria-pressed="true"', dom)
