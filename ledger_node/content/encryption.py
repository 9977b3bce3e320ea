"""Artifact encryption: streamed AES-256-GCM, content keys wrapped by ECIES (secp256k1).

Ciphertext format (chunked AEAD, the "STREAM" construction, so each piece is
authenticated before it is released and truncation or reordering is caught):

    header  = b"GMENC\\x01" | segment size (u32 BE) | nonce prefix (7 random bytes)
    segment = AES-256-GCM(key, nonce = prefix | index (u32 BE) | last flag (1 byte),
                          plaintext piece, aad = header)         # piece + 16-byte tag

Every segment holds ``segment size`` plaintext bytes except the last (which may be
empty). A fresh 32-byte content key is made per artifact and is never written
anywhere in the clear: callers wrap it with :func:`wrap_key` for each licensed
wallet (including the publisher's own) and keep only the wrapped forms.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import ecies
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .background import Backlog
from .errors import ContentError, IntegrityError
from .ingest import Progress, PutResult, read_chunk

MAGIC = b"GMENC\x01"
HEADER_LEN = len(MAGIC) + 4 + 7
TAG_LEN = 16
SEGMENT_SIZE = 1024 * 1024
KEY_LEN = 32


def new_content_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">I?", index, last)


class EncryptingReader:
    """File-like ciphertext of ``src`` under ``content_key``; read it once to the end.

    After EOF, ``plaintext_sha256`` and ``plaintext_size`` describe the source,
    which is what a product certificate records next to the ciphertext's CID.
    """

    def __init__(self, src: BinaryIO, content_key: bytes | None = None, *, segment_size: int = SEGMENT_SIZE):
        self.content_key = content_key or new_content_key()
        if len(self.content_key) != KEY_LEN:
            raise ContentError("content key must be 32 bytes (AES-256)")
        self._src, self._segment = src, segment_size
        self._aead = AESGCM(self.content_key)
        self._prefix = os.urandom(7)
        self._header = MAGIC + struct.pack(">I", segment_size) + self._prefix
        self._digest = hashlib.sha256()
        self._hashing = Backlog(workers=1, limit=4)
        self._index = 0
        self.plaintext_size = 0
        self._next = self._read_piece()
        self._out = memoryview(self._header)
        self._done = False

    def _read_piece(self) -> bytes:
        piece = read_chunk(self._src, self._segment)
        self._hashing.submit(self._digest.update, piece)
        self.plaintext_size += len(piece)
        return piece

    @property
    def plaintext_sha256(self) -> str:
        if not self._done:
            raise ContentError("plaintext_sha256 is known only after the ciphertext was read to the end")
        self._hashing.drain()
        return self._digest.hexdigest()

    def close(self) -> None:
        """Stop the hashing thread (idempotent)."""
        self._hashing.close()

    def _seal_next(self) -> bytes:
        piece = self._next
        self._next = self._read_piece() if len(piece) == self._segment else b""
        last = not self._next
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), piece, self._header)
        self._index += 1
        self._done = last
        return sealed

    def read(self, n: int = -1) -> bytes:
        if not self._out:
            if self._done:
                self._hashing.drain()
                self.close()
                return b""
            self._out = memoryview(self._seal_next())
        n = len(self._out) if n is None or n < 0 else n
        out, self._out = self._out[:n], self._out[n:]
        return bytes(out)


def decrypt_stream(ciphertext: Iterable[bytes], content_key: bytes, *, expected_sha256: str | None = None) -> Iterator[bytes]:
    """Plaintext pieces; each segment is authenticated before it is yielded."""
    aead = AESGCM(content_key)
    buf = bytearray()
    pieces = iter(ciphertext)
    for piece in pieces:
        buf += piece
        if len(buf) >= HEADER_LEN:
            break
    header = bytes(buf[:HEADER_LEN])
    if len(header) < HEADER_LEN or header[: len(MAGIC)] != MAGIC:
        raise ContentError("not a GridMart encrypted artifact (bad header); was it stored with --encrypt?")
    (segment,) = struct.unpack(">I", header[len(MAGIC) : len(MAGIC) + 4])
    prefix, sealed_len = header[len(MAGIC) + 4 :], segment + TAG_LEN
    del buf[:HEADER_LEN]
    digest, index = hashlib.sha256(), 0

    def open_segment(sealed: bytes, last: bool) -> bytes:
        try:
            return aead.decrypt(_nonce(prefix, index, last), sealed, header)
        except InvalidTag:
            raise IntegrityError(
                f"encrypted segment {index} failed authentication: wrong content key, or the ciphertext was altered or truncated"
            ) from None

    for piece in itertools.chain([b""], pieces):  # b"": first drain what the header read left
        buf += piece
        while len(buf) > sealed_len:  # more follows, so this segment is not the last
            plain = open_segment(bytes(buf[:sealed_len]), False)
            del buf[:sealed_len]
            digest.update(plain)
            index += 1
            yield plain
    if len(buf) > sealed_len or len(buf) < TAG_LEN:
        raise IntegrityError("encrypted artifact is truncated; fetch it again")
    plain = open_segment(bytes(buf), True)
    digest.update(plain)
    yield plain
    if expected_sha256 and digest.hexdigest() != expected_sha256.lower():
        raise IntegrityError(f"decrypted sha-256 {digest.hexdigest()} differs from the certified {expected_sha256}")


@dataclass(frozen=True, slots=True)
class EncryptedPut:
    """A stored ciphertext (``stored.cid``) plus what the certificate needs about the plaintext."""

    stored: PutResult
    content_key: bytes
    plaintext_sha256: str
    plaintext_size: int


def put_encrypted(store, fileobj: BinaryIO, *, cid_version: int = 1, progress: Progress | None = None) -> EncryptedPut:
    """Encrypt ``fileobj`` with a fresh key while streaming it into ``store``."""
    reader = EncryptingReader(_Counting(fileobj, progress))
    try:
        stored = store.put_stream(reader, cid_version=cid_version)
        return EncryptedPut(stored, reader.content_key, reader.plaintext_sha256, reader.plaintext_size)
    finally:
        reader.close()


class _Counting:
    """Report plaintext progress (the ciphertext is slightly longer)."""

    def __init__(self, src: BinaryIO, progress: Progress | None):
        self._src, self._progress = src, progress

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        if self._progress and data:
            self._progress(len(data))
        return data


def _public_key_bytes(key: "bytes | str") -> bytes:
    raw = bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else bytes(key)
    if len(raw) == 64:  # Ethereum style: uncompressed without the 0x04 prefix
        raw = b"\x04" + raw
    if len(raw) not in (33, 65):
        raise ContentError("recipient public key must be 33, 64 or 65 bytes of secp256k1 (hex or bytes)")
    return raw


def wrap_key(content_key: bytes, recipient_public_key: "bytes | str") -> bytes:
    """Encrypt the content key to a wallet's secp256k1 public key (ECIES, eciespy)."""
    try:
        return ecies.encrypt(_public_key_bytes(recipient_public_key), content_key)
    except ValueError as exc:
        raise ContentError(f"recipient public key is not a valid secp256k1 point ({exc}); use the wallet's public key") from None


def unwrap_key(wrapped: bytes, private_key: "bytes | str") -> bytes:
    """Recover the content key with the wallet's private key; fails for any other wallet."""
    secret = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else bytes(private_key)
    try:
        key = ecies.decrypt(secret, bytes(wrapped))
    except (ValueError, InvalidTag) as exc:
        raise ContentError(f"cannot unwrap the content key ({type(exc).__name__}): it was not wrapped for this wallet") from None
    if len(key) != KEY_LEN:
        raise ContentError("unwrapped content key has the wrong length; the wrapped key is corrupt")
    return key
