"""PNG heat maps, one per layer and period, each with title, colour bar and legend.

Matplotlib draws the map frame (axes, lon/lat ticks, legend) once; Pillow adds each
layer's colour bar and each period's title, and pastes in the grid that datashader
shaded. Each map is then mapped onto a fixed 256-colour palette (the layer's colour
table, greys, the no-data colour) and written as an indexed PNG: ~8 ms of CPU a map
instead of ~100 ms for a full matplotlib figure, which keeps 5 layers x 24 hours in budget.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datashader.transfer_functions as tf
import matplotlib
import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageColor, ImageDraw, ImageFont

from analytics.heatmap.colors import NO_DATA, OUTLINE, lut
from analytics.heatmap.layers import LAYERS, Layer, cell_layers, scale_max
from analytics.heatmap.privacy import Released

_MAP_W, _MAP_H = 560, 500          # largest map box, pixels
_LEFT, _BOTTOM, _TOP, _RIGHT = 72, 84, 64, 130
_BAR_GAP, _BAR_W = 18, 16
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_PERIOD_NAMES = {"hour": "hour", "daytype": "day type", "month": "month"}
_SHADES = 192  # colour-table entries per layer; the rest of the palette is greys


def _palette(layer: Layer) -> Image.Image:
    """The layer's colours exactly, 60 greys for text and lines, and the no-data colour."""
    colours = [ImageColor.getrgb(c) for c in lut(layer.cmap, _SHADES)]
    colours += [(g, g, g) for g in np.linspace(0, 255, 60).round().astype(int)]
    colours += [ImageColor.getrgb(NO_DATA), ImageColor.getrgb("#999999"), (0, 0, 0)]
    flat = [v for rgb in colours[:256] for v in rgb]
    palette = Image.new("P", (1, 1))
    palette.putpalette(flat + flat[-3:] * (256 - len(flat) // 3))
    return palette


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size)


class _Frame:
    """The static picture every map shares and where its map box sits in it."""

    def __init__(self, rel: Released):
        grid = rel.grid
        scale = min(_MAP_W / grid.width, _MAP_H / grid.height)
        self.box_w, self.box_h = max(1, round(grid.width * scale)), max(1, round(grid.height * scale))
        self.width, self.height = _LEFT + self.box_w + _RIGHT, _TOP + self.box_h + _BOTTOM
        self.image = self._draw(rel)
        self.outlines = self._overlay(rel, stations=False)
        self.with_stations = self._overlay(rel, stations=True)

    def _draw(self, rel: Released) -> Image.Image:
        w, h = self.width, self.height
        fig = Figure(figsize=(w / 100, h / 100), dpi=100, facecolor="white")
        ax = fig.add_axes((_LEFT / w, _BOTTOM / h, self.box_w / w, self.box_h / h))
        ax.set_facecolor(NO_DATA)
        ax.set_xlim(*rel.grid.x_range)
        ax.set_ylim(*rel.grid.y_range)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("longitude", fontsize=8)
        ax.set_ylabel("latitude", fontsize=8)
        handles = [Patch(facecolor=NO_DATA, edgecolor="#999999",
                         label=f"no data, or fewer than {rel.min_count} customers (withheld)"),
                   Line2D([], [], color="#3c3c3c", lw=1, label="supply area"),
                   Line2D([], [], marker="^", ls="", color="white", markeredgecolor="black",
                          label="EV station (EV layers)")]
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(_LEFT / w, 0.0),
                   ncol=3, fontsize=8, frameon=False)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")

    def _to_px(self, rel: Released, lon, lat):
        (x0, x1), (y0, y1) = rel.grid.x_range, rel.grid.y_range
        return ((np.asarray(lon) - x0) / (x1 - x0) * self.box_w,
                (1 - (np.asarray(lat) - y0) / (y1 - y0)) * self.box_h)

    def _overlay(self, rel: Released, stations: bool) -> Image.Image:
        """Area outlines (and EV stations), drawn once, composited onto every period."""
        over = Image.new("RGBA", (self.box_w, self.box_h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(over)
        a = rel.areas
        xs0, ys1 = self._to_px(rel, a["lon_min"], a["lat_min"])
        xs1, ys0 = self._to_px(rel, a["lon_max"], a["lat_max"])
        for box in zip(xs0, ys0, xs1, ys1):
            draw.rectangle(box, outline=OUTLINE, width=1)
        if stations and len(rel.stations):
            for x, y in zip(*self._to_px(rel, rel.stations["lon"], rel.stations["lat"])):
                draw.polygon([(x, y - 4), (x - 3.5, y + 3), (x + 3.5, y + 3)],
                             fill=(255, 255, 255, 230), outline=(0, 0, 0, 255))
        return over

    def layer_image(self, layer: Layer, vmax: float) -> Image.Image:
        """The frame plus this layer's colour bar (gradient, ticks, unit, clipped-top mark)."""
        image = self.image.copy()
        draw = ImageDraw.Draw(image)
        x0, y0 = _LEFT + self.box_w + _BAR_GAP, _TOP
        colours = lut(layer.cmap, self.box_h)
        for i, colour in enumerate(colours):
            draw.line([(x0, y0 + self.box_h - 1 - i), (x0 + _BAR_W - 1, y0 + self.box_h - 1 - i)], fill=colour)
        draw.rectangle((x0, y0, x0 + _BAR_W - 1, y0 + self.box_h - 1), outline="#555555")
        draw.polygon([(x0, y0 - 2), (x0 + _BAR_W - 1, y0 - 2), (x0 + _BAR_W / 2, y0 - 12)], fill=colours[-1],
                     outline="#555555")
        small = _font(10)
        for tick in MaxNLocator(6).tick_values(0, vmax):
            if 0 <= tick <= vmax:
                y = y0 + self.box_h - 1 - tick / vmax * (self.box_h - 1)
                draw.line([(x0 + _BAR_W, y), (x0 + _BAR_W + 3, y)], fill="#333333")
                draw.text((x0 + _BAR_W + 6, y), f"{tick:g}", fill="#222222", font=small, anchor="lm")
        label = Image.new("RGBA", (self.box_h, 16), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((self.box_h / 2, 8), f"{layer.title} ({layer.unit}); top = {vmax:.3g} or more",
                                   fill="#222222", font=_font(11), anchor="mm")
        label = label.rotate(90, expand=True)
        image.paste(label, (x0 + _BAR_W + 56, y0), label)
        return image


def _shade(values: np.ndarray, layer: Layer, vmax: float) -> np.ndarray:
    """Datashader colours all periods of a layer in one call (shade has ~8 ms of fixed
    cost): [period, row, col] values to RGBA, north up, NaN transparent."""
    n_p, height, width = values.shape
    stacked = np.clip(values, 0, vmax).reshape(n_p * height, width)
    agg = xr.DataArray(stacked, dims=("y", "x"),
                       coords={"y": np.arange(n_p * height), "x": np.arange(width)})
    img = tf.shade(agg, cmap=lut(layer.cmap, _SHADES), how="linear", span=(0, vmax), min_alpha=255)
    rgba = np.ascontiguousarray(img.data).view(np.uint8).reshape(n_p, height, width, 4)
    return rgba[:, ::-1]


def slug(label: str) -> str:
    """File-name form of a period label: '18:00' -> '1800', 'weekday' -> 'weekday'."""
    return label.replace(":", "").replace(" ", "_").lower()


def render_pngs(rel: Released, out_dir: str | Path, progress=None, workers: int = 2) -> list[str]:
    """Write ``<layer>_<period>.png`` for every layer and period; returns the paths.

    Encoding runs on ``workers`` threads (Pillow releases the GIL while compressing).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values = cell_layers(rel)
    frame = _Frame(rel)
    big, small = _font(17, bold=True), _font(11)
    period_name = _PERIOD_NAMES.get(rel.kind, rel.kind)
    jobs = []
    for layer in LAYERS:
        vmax = scale_max(layer, values[layer.name])
        base = frame.layer_image(layer, vmax)
        overlay = frame.with_stations if layer.name.startswith("ev") else frame.outlines
        shaded = _shade(values[layer.name], layer, vmax)
        palette = _palette(layer)
        jobs += [(layer, base, overlay, palette, shaded[p], label) for p, label in enumerate(rel.labels)]

    def one(job) -> str:
        layer, base, overlay, palette, rgba, label = job
        image = base.copy()
        raster = Image.fromarray(rgba, "RGBA").resize((frame.box_w, frame.box_h), Image.NEAREST)
        raster.alpha_composite(overlay)
        image.paste(raster, (_LEFT, _TOP), raster)
        draw = ImageDraw.Draw(image)
        draw.text((_LEFT, 14), f"{layer.title} ({layer.unit}), {period_name} {label}", fill="black", font=big)
        draw.text((_LEFT, 40), f"GridMart power heat map · {rel.grid.cell_m:g} m cells · cells with "
                  f"fewer than {rel.min_count} customers withheld", fill="#444444", font=small)
        path = out / f"{layer.name}_{slug(label)}.png"
        image.quantize(palette=palette, dither=Image.Dither.NONE).save(path, compress_level=1)
        if progress:
            progress()
        return str(path)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, jobs))
