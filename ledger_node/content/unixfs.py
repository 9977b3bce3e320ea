"""DAG-PB nodes carrying UnixFS file data: the exact bytes js-ipfs and Kubo write.

A tiny protobuf writer/reader for the handful of fields a UnixFS *file* uses
(no PyPI package encodes DAG-PB byte-for-byte like go/js do).
Field order follows the dag-pb spec: Links (2) before Data (1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .cid import CID, from_bytes, read_varint, varint
from .errors import ContentError

FILE = 2  # UnixFS Data.Type for a file
RAW_TYPE = 0


@dataclass(frozen=True, slots=True)
class Link:
    cid: CID
    tsize: int  # cumulative size of the linked sub-DAG's blocks


@dataclass(slots=True)
class FileNode:
    """A decoded dag-pb file node: inline data and/or links to children."""

    data: bytes = b""
    links: list[Link] = field(default_factory=list)
    filesize: int = 0


def _field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _uint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def _unixfs(data: bytes, filesize: int, blocksizes: list[int]) -> bytes:
    out = _uint(1, FILE)
    if data:  # js-ipfs and Kubo omit an empty Data field
        out += _field(2, data)
    out += _uint(3, filesize)
    out += b"".join(_uint(4, size) for size in blocksizes)
    return out


def leaf_node(chunk: bytes) -> bytes:
    """A CIDv0-style leaf: a dag-pb node whose UnixFS data is the chunk itself."""
    return _field(1, _unixfs(chunk, len(chunk), []))


def parent_node(links: list[Link], blocksizes: list[int]) -> bytes:
    """An interior node linking children; ``blocksizes`` are their file sizes."""
    body = b"".join(
        _field(2, _field(1, link.cid.to_bytes()) + _field(2, b"") + _uint(3, link.tsize))
        for link in links
    )
    return body + _field(1, _unixfs(b"", sum(blocksizes), blocksizes))


def _fields(buf: bytes):
    """Yield (field number, wire type, value) for a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value = buf[pos : pos + length]
            if len(value) != length:
                raise ContentError("truncated protobuf field in a dag-pb block; the block is corrupt")
            pos += length
        else:
            raise ContentError(f"unexpected protobuf wire type {wire} in a dag-pb block; not a UnixFS file")
        yield number, wire, value


def decode(block: bytes) -> FileNode:
    """Decode a dag-pb block holding a UnixFS file (or raw) node."""
    node = FileNode()
    unixfs = None
    for number, _, value in _fields(block):
        if number == 2:
            link_cid, tsize = None, 0
            for n, _, v in _fields(value):
                if n == 1:
                    link_cid = from_bytes(v)
                elif n == 3:
                    tsize = v
            if link_cid is None:
                raise ContentError("dag-pb link without a hash; the block is corrupt")
            node.links.append(Link(link_cid, tsize))
        elif number == 1:
            unixfs = value
    if unixfs is None:
        raise ContentError("dag-pb node without UnixFS data; only UnixFS files can be read")
    kind = None
    for number, _, value in _fields(unixfs):
        if number == 1:
            kind = value
        elif number == 2:
            node.data = bytes(value)
        elif number == 3:
            node.filesize = value
    if kind not in (FILE, RAW_TYPE):
        raise ContentError(f"UnixFS node of type {kind} is not a file; only files are supported")
    return node
