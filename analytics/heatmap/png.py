"""PNG heat maps, one per layer and period, each with title, colour bar and legend.

Matplotlib draws a frame once per layer (axes, ticks, colour bar, legend), datashader
shades each period's grid, and Pillow pastes it in and writes the title: ~10 ms a
PNG instead of ~80 ms for a full matplotlib figure, which keeps 120 maps inside the
bench budget.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datashader.transfer_functions as tf
import matplotlib
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image, ImageDraw, ImageFont

from analytics.heatmap.colors import NO_DATA, OUTLINE, lut
from analytics.heatmap.layers import LAYERS, Layer, cell_layers, scale_max
from analytics.heatmap.privacy import Released

_MAP_W, _MAP_H = 640, 560          # largest map box, pixels
_LEFT, _BOTTOM, _TOP, _RIGHT = 72, 96, 64, 120
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


class _Frame:
    """One layer's static picture and where its map box sits in it."""

    def __init__(self, rel: Released, layer: Layer, vmax: float):
        grid = rel.grid
        scale = min(_MAP_W / grid.width, _MAP_H / grid.height)
        self.box_w, self.box_h = max(1, round(grid.width * scale)), max(1, round(grid.height * scale))
        width, height = _LEFT + self.box_w + _RIGHT, _TOP + self.box_h + _BOTTOM
        self.left, self.top = _LEFT, _TOP
        self.image = self._draw(rel, layer, vmax, width, height)
        self.overlay = self._overlay(rel, layer)

    def _draw(self, rel: Released, layer: Layer, vmax: float, width: int, height: int) -> Image.Image:
        fig = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor="white")
        ax = fig.add_axes((_LEFT / width, _BOTTOM / height, self.box_w / width, self.box_h / height))
        ax.set_facecolor(NO_DATA)
        ax.set_xlim(*rel.grid.x_range)
        ax.set_ylim(*rel.grid.y_range)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("longitude", fontsize=8)
        ax.set_ylabel("latitude", fontsize=8)
        cax = fig.add_axes(((_LEFT + self.box_w + 16) / width, _BOTTOM / height, 16 / width, self.box_h / height))
        mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, vmax),
                                                matplotlib.colors.ListedColormap(lut(layer.cmap)))
        bar = fig.colorbar(mappable, cax=cax, extend="max")
        bar.set_label(f"{layer.title} ({layer.unit})", fontsize=9)
        bar.ax.tick_params(labelsize=8)
        handles = [Patch(facecolor=NO_DATA, edgecolor="#999999",
                         label=f"no data, or fewer than {rel.min_count} customers (withheld)"),
                   Line2D([], [], color="#3c3c3c", lw=1, label="supply area")]
        if layer.name.startswith("ev"):
            handles.append(Line2D([], [], marker="^", ls="", color="white", markeredgecolor="black",
                                  label="EV charging station"))
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(_LEFT / width, 0.0),
                   ncol=len(handles), fontsize=8, frameon=False)
        fig.canvas.draw()
        return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")

    def _to_px(self, rel: Released, lon, lat):
        (x0, x1), (y0, y1) = rel.grid.x_range, rel.grid.y_range
        return ((np.asarray(lon) - x0) / (x1 - x0) * self.box_w,
                (1 - (np.asarray(lat) - y0) / (y1 - y0)) * self.box_h)

    def _overlay(self, rel: Released, layer: Layer) -> Image.Image:
        """Area outlines (and stations on EV layers), drawn once, pasted on every period."""
        over = Image.new("RGBA", (self.box_w, self.box_h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(over)
        a = rel.areas
        xs0, ys1 = self._to_px(rel, a["lon_min"], a["lat_min"])
        xs1, ys0 = self._to_px(rel, a["lon_max"], a["lat_max"])
        for box in zip(xs0, ys0, xs1, ys1):
            draw.rectangle(box, outline=OUTLINE, width=1)
        if layer.name.startswith("ev") and len(rel.stations):
            for x, y in zip(*self._to_px(rel, rel.stations["lon"], rel.stations["lat"])):
                draw.polygon([(x, y - 4), (x - 3.5, y + 3), (x + 3.5, y + 3)],
                             fill=(255, 255, 255, 230), outline=(0, 0, 0, 255))
        return over


def _shade(values: np.ndarray, layer: Layer, vmax: float) -> Image.Image:
    """Datashader colours one [row, col] grid; NaN stays transparent; north up."""
    agg = xr.DataArray(np.clip(values, 0, vmax), dims=("y", "x"),
                       coords={"y": np.arange(values.shape[0]), "x": np.arange(values.shape[1])})
    return tf.shade(agg, cmap=lut(layer.cmap), how="linear", span=(0, vmax), min_alpha=255).to_pil()


def _title_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_FONT_DIR / "DejaVuSans-Bold.ttf"), size)


def render_pngs(rel: Released, out_dir: str | Path, progress=None, workers: int = 2) -> list[str]:
    """Write ``<layer>_<period>.png`` for every layer and period; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values = cell_layers(rel)
    big, small = _title_font(17), ImageFont.truetype(str(_FONT_DIR / "DejaVuSans.ttf"), 11)
    jobs = []
    for layer in LAYERS:
        vmax = scale_max(layer, values[layer.name])
        frame = _Frame(rel, layer, vmax)
        for p, label in enumerate(rel.labels):
            jobs.append((layer, vmax, frame, p, label))

    def one(job) -> str:
        layer, vmax, frame, p, label = job
        image = frame.image.copy()
        raster = _shade(values[layer.name][p], layer, vmax).resize((frame.box_w, frame.box_h), Image.NEAREST)
        raster.alpha_composite(frame.overlay)
        image.paste(raster, (frame.left, frame.top), raster)
        draw = ImageDraw.Draw(image)
        draw.text((frame.left, 14), f"{layer.title} ({layer.unit}) - {_period_name(rel.kind)} {label}",
                  fill="black", font=big)
        draw.text((frame.left, 40), f"GridMart power heat map · {rel.grid.cell_m:g} m cells · "
                  f"cells with fewer than {rel.min_count} customers withheld", fill="#444444", font=small)
        path = out / f"{layer.name}_{_slug(label)}.png"
        image.save(path, compress_level=1)
        if progress:
            progress()
        return str(path)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, jobs))


def _period_name(kind: str) -> str:
    return {"hour": "hour", "daytype": "day type", "month": "month"}.get(kind, kind)


def _slug(label: str) -> str:
    return label.replace(":", "").replace(" ", "_").lower()


def expected_png_count(rel: Released) -> int:
    return len(LAYERS) * len(rel.labels)

