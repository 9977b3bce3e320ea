"""Chunk a byte stream into a balanced UnixFS DAG, exactly as `ipfs add` does.

256 KiB fixed chunks, at most 174 links per node, layers built bottom-up in
batches (js-ipfs ``balanced`` / Kubo ``--layout=balanced`` give the same tree).
CIDv1 uses raw leaves; CIDv0 wraps each chunk in a dag-pb leaf node.
Blocks are handed to a sink as they are made, so memory stays bounded.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from .cid import CID, DAG_PB, RAW
from .unixfs import Link, leaf_node, parent_node

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174

BlockSink = Callable[[CID, bytes], None]


@dataclass(frozen=True, slots=True)
class _Child:
    link: Link
    filesize: int


class DagBuilder:
    """Feed chunks with :meth:`add_chunk`; :meth:`finish` returns the root CID."""

    def __init__(self, sink: BlockSink, cid_version: int = 1):
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        self._sink = sink
        self._version = cid_version
        self._levels: list[list[_Child]] = [[]]
        self._leaves = 0

    def _emit(self, codec: int, block: bytes) -> CID:
        cid = CID(self._version, codec, hashlib.sha256(block).digest())
        self._sink(cid, block)
        return cid

    def add_chunk(self, chunk: bytes) -> None:
        """Store one leaf (callers pass full 256 KiB chunks except the last)."""
        if self._version == 1:
            cid, tsize = self._emit(RAW, chunk), len(chunk)
        else:
            block = leaf_node(chunk)
            cid, tsize = self._emit(DAG_PB, block), len(block)
        self._leaves += 1
        self._push(0, _Child(Link(cid, tsize), len(chunk)))

    def _push(self, level: int, child: _Child) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(child)
        if len(self._levels[level]) == MAX_LINKS:
            self._push(level + 1, self._reduce(level))

    def _reduce(self, level: int) -> _Child:
        children, self._levels[level] = self._levels[level], []
        sizes = [c.filesize for c in children]
        block = parent_node([c.link for c in children], sizes)
        cid = self._emit(DAG_PB, block)
        return _Child(Link(cid, len(block) + sum(c.link.tsize for c in children)), sum(sizes))

    def finish(self) -> CID:
        """Close the tree; a lone leaf (or the empty file) is its own root."""
        if self._leaves == 0:
            self.add_chunk(b"")
        if self._leaves == 1:
            return self._levels[0][0].link.cid
        level = 0
        while True:
            pending = self._levels[level]
            if len(pending) == 1 and not any(self._levels[level + 1 :]):
                return pending[0].link.cid
            if pending:
                self._push(level + 1, self._reduce(level))
            level += 1


def compute_cid(data: bytes, cid_version: int = 1) -> str:
    """CID of ``data`` without storing anything (``ipfs add --only-hash``)."""
    builder = DagBuilder(lambda cid, block: None, cid_version)
    for start in range(0, len(data), CHUNK_SIZE):
        builder.add_chunk(data[start : start + CHUNK_SIZE])
    return str(builder.finish())
