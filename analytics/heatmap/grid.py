"""The square grid (equal cells in metres) that every layer is rasterised onto.

Datashader does the rasterising; :meth:`Grid.cells` repeats its exact binning rule
(``int(x * s + t)``, upper edge clamped) for the few places that need a cell index
per point, and a test checks the two agree point for point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import datashader as ds
import numpy as np

from analytics.heatmap.errors import HeatmapError

M_PER_DEG_LAT = 111_320.0
MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class Grid:
    """Grid geometry: lon/lat ranges (both edges inclusive) and the cell counts."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int
    height: int
    cell_m: float

    @classmethod
    def covering(cls, lon_min: float, lat_min: float, lon_max: float, lat_max: float,
                 cell_m: float) -> "Grid":
        """Smallest grid of ``cell_m``-metre squares that covers the box."""
        if not cell_m > 0:
            raise HeatmapError(f"cell size must be positive, got {cell_m}")
        if not all(map(math.isfinite, (lon_min, lat_min, lon_max, lat_max))):
            raise HeatmapError("the data has no finite coordinates to draw")
        lat0 = math.radians((lat_min + lat_max) / 2)
        dlat = cell_m / M_PER_DEG_LAT
        dlon = cell_m / (M_PER_DEG_LAT * max(math.cos(lat0), 1e-6))
        width = max(1, math.ceil((lon_max - lon_min) / dlon))
        height = max(1, math.ceil((lat_max - lat_min) / dlat))
        if width * height > MAX_CELLS:
            raise HeatmapError(f"{width}x{height} cells is too many; use a larger --cell-m")
        x1 = max(lon_min + width * dlon, lon_max)
        y1 = max(lat_min + height * dlat, lat_max)
        return cls((lon_min, x1), (lat_min, y1), width, height, float(cell_m))

    @property
    def size(self) -> int:
        return self.width * self.height

    def canvas(self) -> ds.Canvas:
        return ds.Canvas(plot_width=self.width, plot_height=self.height,
                         x_range=self.x_range, y_range=self.y_range)

    def _scale(self) -> tuple[float, float, float, float]:
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        sx, sy = self.width / (x1 - x0), self.height / (y1 - y0)
        return sx, -x0 * sx, sy, -y0 * sy

    def cells(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Flat cell index (row * width + col, row 0 = south) per point; -1 off the grid."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        sx, tx, sy, ty = self._scale()
        inside = ((lon >= self.x_range[0]) & (lon <= self.x_range[1])
                  & (lat >= self.y_range[0]) & (lat <= self.y_range[1]))
        col = np.minimum(np.trunc(lon * sx + tx), self.width - 1)
        row = np.minimum(np.trunc(lat * sy + ty), self.height - 1)
        flat = np.where(inside, row * self.width + col, -1)
        return flat.astype(np.int64)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre longitudes (per column) and latitudes (per row)."""
        sx, tx, sy, ty = self._scale()
        return ((np.arange(self.width) + 0.5 - tx) / sx,
                (np.arange(self.height) + 0.5 - ty) / sy)
