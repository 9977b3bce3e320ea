"""Colour tables shared by the PNGs and the HTML, so both show the same colours."""
from __future__ import annotations

import matplotlib
import numpy as np

NO_DATA = "#ececec"   # empty and withheld cells look the same on purpose
OUTLINE = (60, 60, 60, 110)


def lut(cmap: str, n: int = 256) -> list[str]:
    """``n`` hex colours sampled along a matplotlib colormap."""
    rgba = matplotlib.colormaps[cmap](np.linspace(0, 1, n))
    return ["#%02x%02x%02x" % tuple(int(round(c * 255)) for c in row[:3]) for row in rgba]
