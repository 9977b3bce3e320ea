"""Which supply area a point lies in (areas are lon/lat boxes; the first box wins)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def locate(lon: np.ndarray, lat: np.ndarray, areas: pd.DataFrame) -> np.ndarray:
    """Row index into ``areas`` per point, -1 when no box holds it.

    One vectorised pass per area: it runs on unique meters / stations (~10^5),
    never on raw readings, so areas x points stays small.
    """
    found = np.full(len(lon), -1, dtype=np.int64)
    boxes = areas[["lon_min", "lat_min", "lon_max", "lat_max"]].to_numpy()
    for index in range(len(boxes) - 1, -1, -1):  # reverse, so the first matching box wins
        x0, y0, x1, y1 = boxes[index]
        found[(lon >= x0) & (lon < x1) & (lat >= y0) & (lat < y1)] = index
    return found
