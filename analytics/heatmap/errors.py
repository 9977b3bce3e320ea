"""The heat map's own error type: this subpackage imports nothing else of GridMart."""
from __future__ import annotations


class HeatmapError(ValueError):
    """Inputs or options the heat map cannot work with; the message says what to fix."""
