"""What render_all writes: PNGs per layer and period, an offline HTML page, the tables."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from analytics.heatmap.layers import LAYERS


def test_one_png_per_layer_and_period_with_picture_and_text(rendered):
    names = sorted(Path(p).name for p in rendered["png"])
    assert names == sorted(f"{layer.name}_{period}.png" for layer in LAYERS for period in ("weekday", "weekend"))
    for path in rendered["png"]:
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        assert image.shape[0] > 400 and image.shape[1] > 500
        assert image.std() > 20, f"{path} looks blank"
        title = image[10:36, 60:400]
        assert (title.sum(axis=2) < 150).sum() > 200, f"{path} has no title text"
        colours = {tuple(c) for c in image[::4, ::4].reshape(-1, 3)}
        assert len(colours) > 30, f"{path} has no colour scale"


class _Refs(HTMLParser):
    """Every attribute that can load something, and every inline style."""

    def __init__(self):
        super().__init__()
        self.refs, self.styles, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action", "formaction", "background", "xlink:href"):
                self.refs.append((tag, name, value))
            if name == "style":
                self.styles.append(value or "")

    def handle_data(self, data):
        if self.tags and self.tags[-1] == "style":
            self.styles.append(data)


def test_html_references_no_external_url(rendered):
    page = Path(rendered["html"]).read_text(encoding="utf-8")
    parser = _Refs()
    parser.feed(page)
    assert "script" in parser.tags and "canvas" in parser.tags
    for tag, name, value in parser.refs:
        assert value.startswith(("#", "data:")), f"<{tag} {name}={value!r}> loads something"
    for style in parser.styles:
        for url in re.findall(r"url\(([^)]*)\)", style):
            assert url.strip("'\" ").startswith("data:"), url
        assert "@import" not in style
    assert not re.search(r"[a-zA-Z][a-zA-Z0-9+.-]*://", page), "a URL with a scheme appears in the page"
    assert not re.search(r"""["'(]//[a-zA-Z0-9]""", page), "a protocol-relative URL appears in the page"
    assert "fetch(" not in page and "XMLHttpRequest" not in page and "import(" not in page


def test_html_embeds_every_layer_and_period(rendered):
    page = Path(rendered["html"]).read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="heatmap-data">(.*?)</script>', page, re.S).group(1))
    assert data["labels"] == ["weekday", "weekend"]
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in LAYERS]
    for layer in data["layers"]:
        assert len(layer["values"]) == 2 and len(layer["lut"]) == 256
    assert 'type="range"' in page and 'id="layers"' in page  # slider; layer toggles are built into #layers


def test_tables(rendered):
    cells = pd.read_csv(rendered["cells"])
    areas = pd.read_csv(rendered["areas"])
    weakest = pd.read_csv(rendered["weakest"])
    for column in ("load_kw", "load_ratio", "ev_share_pct", "kwh_per_capita_day", "meters", "capacity_kw"):
        assert column in cells.columns and column in areas.columns
    assert set(cells["period"]) == {"weekday", "weekend"}
    assert cells.duplicated(["period", "cell"]).sum() == 0
    assert ((cells["meters"] >= 5) | (cells["ev_users"] >= 5)).all()
    np.testing.assert_allclose(areas["peak_ratio"], areas["peak_kw"] / areas["capacity_kw"], atol=1e-4)  # 4 decimals
    assert (areas["peak_kw"] >= areas["load_kw"] - 1e-3).all()  # a peak is at least the mean
    assert 1 <= len(weakest) <= 10 and weakest["area_id"].is_unique
    assert list(weakest["peak_ratio"]) == sorted(weakest["peak_ratio"], reverse=True)
    assert weakest["peak_ratio"].iloc[0] == areas.dropna(subset=["meter_kwh", "ev_kwh"])["peak_ratio"].max()
    manifest = json.loads(Path(rendered["manifest"]).read_text())
    assert manifest["min_count"] == 5 and len(manifest["files"]["png"]) == 10
