"""CAR v1 (content archive) write and read, so artifacts move into any IPFS node.

Format: varint-prefixed dag-cbor header ``{roots: [CID], version: 1}``, then
``varint(len) | CID bytes | block`` sections. The header is the only CBOR, so a
few lines of fixed-shape encoding/decoding replace a CBOR dependency.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from .cid import CID, from_bytes, read_varint, varint
from .errors import ContentError, IntegrityError

MAX_SECTION = 4 * 1024 * 1024  # blocks are <= 1 MiB in IPFS; anything bigger is not a sane CAR
_CID_TAG = b"\xd8\x2a"


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    if n < 256:
        return bytes([major << 5 | 24, n])
    return bytes([major << 5 | 25]) + n.to_bytes(2, "big")


def encode_header(roots: list[CID]) -> bytes:
    out = _head(5, 2) + _head(3, 5) + b"roots" + _head(4, len(roots))
    for cid in roots:
        raw = b"\x00" + cid.to_bytes()
        out += _CID_TAG + _head(2, len(raw)) + raw
    return out + _head(3, 7) + b"version" + _head(0, 1)


def write_car(root: CID, blocks: Iterable[tuple[CID, bytes]], fileobj: BinaryIO) -> int:
    header = encode_header([root])
    written = fileobj.write(varint(len(header)) + header)
    for cid, data in blocks:
        raw = cid.to_bytes()
        written += fileobj.write(varint(len(raw) + len(data)) + raw + data)
    return written


def _cbor(buf: bytes, pos: int):
    """Decode one CBOR item of the kinds a CAR header uses; returns (value, pos)."""
    first = buf[pos]
    major, info = first >> 5, first & 31
    pos += 1
    if info < 24:
        n = info
    elif info in (24, 25, 26, 27):
        width = 1 << (info - 24)
        n = int.from_bytes(buf[pos : pos + width], "big")
        pos += width
    else:
        raise ContentError("CAR header uses an unsupported CBOR form; is this a CAR v1 file?")
    if major == 0:
        return n, pos
    if major in (2, 3):
        raw = bytes(buf[pos : pos + n])
        return (raw if major == 2 else raw.decode()), pos + n
    if major == 4:
        items = []
        for _ in range(n):
            item, pos = _cbor(buf, pos)
            items.append(item)
        return items, pos
    if major == 5:
        out = {}
        for _ in range(n):
            key, pos = _cbor(buf, pos)
            out[key], pos = _cbor(buf, pos)
        return out, pos
    if major == 6 and n == 42:
        raw, pos = _cbor(buf, pos)
        return from_bytes(raw[1:]), pos
    raise ContentError("CAR header uses an unsupported CBOR item; is this a CAR v1 file?")


def _read_varint(fileobj: BinaryIO) -> int | None:
    raw = bytearray()
    while True:
        byte = fileobj.read(1)
        if not byte:
            if raw:
                raise ContentError("CAR file ends inside a length prefix; the file is truncated, copy it again")
            return None
        raw += byte
        if not byte[0] & 0x80:
            return read_varint(raw)[0]


def _read_exact(fileobj: BinaryIO, n: int) -> bytes:
    data = fileobj.read(n)
    if len(data) != n:
        raise ContentError("CAR file ends inside a block; the file is truncated, copy it again")
    return data


def read_car(fileobj: BinaryIO) -> tuple[list[CID], Iterator[tuple[CID, bytes]]]:
    """Roots and a lazy iterator of (CID, block); each block is hash-checked."""
    length = _read_varint(fileobj)
    if not length or length > MAX_SECTION:
        raise ContentError("not a CAR v1 file (bad header length); export it with `ipfs dag export`")
    try:
        header, _ = _cbor(_read_exact(fileobj, length), 0)
    except (IndexError, UnicodeDecodeError):
        raise ContentError("not a CAR v1 file (unreadable header); export it with `ipfs dag export`") from None
    if not isinstance(header, dict) or header.get("version") != 1 or not header.get("roots"):
        raise ContentError("only CAR v1 files with at least one root are supported")
    return list(header["roots"]), _sections(fileobj)


def _sections(fileobj: BinaryIO) -> Iterator[tuple[CID, bytes]]:
    while (length := _read_varint(fileobj)) is not None:
        if length > MAX_SECTION:
            raise ContentError(f"CAR section of {length} bytes is too large; the file is corrupt")
        section = _read_exact(fileobj, length)
        if section[:2] == b"\x12\x20":
            cid, data = from_bytes(section[:34]), section[34:]
        else:
            _, pos = read_varint(section)
            _, pos = read_varint(section, pos)
            cid, data = from_bytes(section[: pos + 34]), section[pos + 34 :]
        if not cid.verify(data):
            raise IntegrityError(f"block {cid} in the CAR file does not match its hash; the CAR is corrupt")
        yield cid, data
