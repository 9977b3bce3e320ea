"""Exact pins of what an entry point needs: the installed versions, with their dependencies.

Pinning the whole dependency closure (not only the top names) means the node's
environment is the one the model was trained and tested in, whatever its pip resolves.
"""
from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

#: What the vendored analytics code imports at prediction and training time.
ROOTS = ("numpy", "pandas", "scikit-learn", "scipy", "skops")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependencies(dist: metadata.Distribution) -> list[str]:
    """Names the distribution requires unconditionally (no extras; markers true here)."""
    names = []
    for line in dist.requires or ():
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def pinned_requirements(roots: tuple[str, ...] = ROOTS) -> list[str]:
    """``name==version`` of every root and everything it needs, as installed, sorted."""
    pins: dict[str, str] = {}
    pending = list(roots)
    while pending:
        name = _canonical(pending.pop())
        if name in pins:
            continue
        dist = metadata.distribution(name)
        pins[name] = f"{name}=={dist.version}"
        pending.extend(_dependencies(dist))
    return [pins[name] for name in sorted(pins)]
