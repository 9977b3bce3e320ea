"""Sizes and payloads shared by the content tests (a uniquely named module, not a package)."""
from __future__ import annotations

import random

KIB = 1024
MIB = 1024 * KIB
#: 175 leaves of 256 KiB: one more than a node can link, so the DAG gets two levels
TWO_LEVEL_SIZE = 174 * 256 * KIB + 1
SIZES = [0, 1, 256 * KIB - 1, 256 * KIB, 256 * KIB + 1, MIB, 10 * MIB + 7, TWO_LEVEL_SIZE]


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes (a different stream per size)."""
    return random.Random(size * 7919 + seed).randbytes(size)


def leftovers(store) -> list:
    """Pack or staging files an embedded store holds: empty when nothing was stored."""
    return [p for folder in (store.blocks.packs, store.blocks.staging) for p in folder.iterdir()]
