"""Walk a UnixFS file DAG and yield its bytes, re-hashing every block on the way.

Backends only supply ``get_block(cid) -> bytes`` (already hash-checked);
this module checks the tree is well formed and sizes add up.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from .cid import CID, RAW, parse
from .errors import IntegrityError
from .unixfs import decode

GetBlock = Callable[[CID], bytes]


def walk_blocks(get_block: GetBlock, root: CID) -> Iterator[tuple[CID, bytes]]:
    """Every block of the DAG in depth-first order (root first), as CAR files list them."""
    stack = [root]
    while stack:
        cid = stack.pop()
        block = get_block(cid)
        yield cid, block
        if cid.codec != RAW:
            stack.extend(reversed([link.cid for link in decode(block).links]))


def iter_file(get_block: GetBlock, root: "str | CID") -> Iterator[bytes]:
    """The file's bytes, block by block; an IntegrityError names the root CID."""
    root_cid = parse(root)
    try:
        yield from _node_bytes(get_block, root_cid)
    except IntegrityError as exc:
        raise IntegrityError(f"content {root_cid} failed its integrity check: {exc}") from None


def _node_bytes(get_block: GetBlock, cid: CID) -> Iterator[bytes]:
    block = get_block(cid)
    if cid.codec == RAW:
        yield block
        return
    node = decode(block)
    if node.data:
        yield node.data
    produced = len(node.data)
    for link in node.links:
        for piece in _node_bytes(get_block, link.cid):
            produced += len(piece)
            yield piece
    if produced != node.filesize:
        raise IntegrityError(f"node {cid} declares {node.filesize} bytes but its blocks hold {produced}")
