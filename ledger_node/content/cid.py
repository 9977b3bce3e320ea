"""CIDs (v0 and v1, sha2-256 only): parse, print, and pack into bytes for contracts.

Hand-written because the only codecs we need are raw and dag-pb, and the PyPI
CID packages are unmaintained; `base58` does the one non-trivial encoding.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import base58

from .errors import ContentError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32


def varint(n: int) -> bytes:
    """Unsigned LEB128, as used by multiformats and protobuf."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode a varint at ``pos``; returns (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ContentError("truncated varint in block data; the block is corrupt, fetch it again")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


@dataclass(frozen=True, slots=True)
class CID:
    """A content id: version, codec (raw / dag-pb) and the sha2-256 digest."""

    version: int
    codec: int
    digest: bytes

    @classmethod
    def of(cls, data: bytes, codec: int, version: int = 1) -> "CID":
        return cls(version, codec, hashlib.sha256(data).digest())

    @property
    def multihash(self) -> bytes:
        return bytes((SHA2_256, _DIGEST_LEN)) + self.digest

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return varint(1) + varint(self.codec) + self.multihash

    def v1(self) -> "CID":
        """The CIDv1 naming the same block (the embedded store's block key)."""
        return CID(1, self.codec, self.digest)

    def __str__(self) -> str:
        if self.version == 0:
            return base58.b58encode(self.multihash).decode()
        return "b" + base64.b32encode(self.to_bytes()).decode().lower().rstrip("=")

    def verify(self, data: bytes) -> bool:
        return hashlib.sha256(data).digest() == self.digest


def parse(text: "str | CID") -> CID:
    """Parse a CID string (v0 ``Qm...``, v1 base32 ``b...`` or base58btc ``z...``)."""
    if isinstance(text, CID):
        return text
    text = text.strip()
    try:
        if len(text) == 46 and text.startswith("Qm"):
            return from_bytes(base58.b58decode(text))
        if text[:1] == "b":
            body = text[1:].upper()
            return from_bytes(base64.b32decode(body + "=" * (-len(body) % 8)))
        if text[:1] == "z":
            return from_bytes(base58.b58decode(text[1:]))
    except (ValueError, ContentError) as exc:
        raise ContentError(f"invalid CID {text!r}: {exc}; pass a CID printed by `gridmart ipfs add`") from None
    raise ContentError(f"invalid CID {text!r}; pass a CIDv0 (Qm...) or a base32 CIDv1 (b...)")


def from_bytes(raw: bytes) -> CID:
    """Decode the binary form (a v0 multihash or ``0x01 codec multihash``)."""
    raw = bytes(raw)
    if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == _DIGEST_LEN:
        return CID(0, DAG_PB, raw[2:])
    version, pos = read_varint(raw)
    codec, pos = read_varint(raw, pos)
    if version != 1 or codec not in (RAW, DAG_PB):
        raise ContentError(f"unsupported CID (version {version}, codec {codec:#x}); only raw and dag-pb are stored")
    if raw[pos : pos + 2] != bytes((SHA2_256, _DIGEST_LEN)) or len(raw) != pos + 2 + _DIGEST_LEN:
        raise ContentError("unsupported CID multihash; only sha2-256 CIDs are stored")
    return CID(1, codec, raw[pos + 2 :])


def cid_to_bytes(cid: "str | CID") -> bytes:
    """Binary CID for a contract's ``bytes`` field (34 bytes for v0, 36 for v1)."""
    return parse(cid).to_bytes()


def cid_from_bytes(raw: bytes) -> str:
    """Inverse of :func:`cid_to_bytes`: the canonical CID string."""
    return str(from_bytes(raw))
