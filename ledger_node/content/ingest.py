"""Read a byte stream once: sha-256 of the whole, UnixFS DAG blocks to a sink.

The one pass every backend shares, so CID, size and sha-256 are always
computed the same way, in 256 KiB steps, whatever the input returns per read.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from .background import Backlog
from .errors import ContentError, IncompleteUpload
from .importer import CHUNK_SIZE, BlockSink, DagBuilder

Progress = Callable[[int], None]  # called with the number of bytes just read


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a put returns: the CID string, sha-256 (hex) and size of the bytes."""

    cid: str
    sha256: str
    size: int


def read_chunk(fileobj: BinaryIO, size: int = CHUNK_SIZE) -> bytes:
    """Read exactly ``size`` bytes unless the stream ends (pipes return short reads)."""
    try:
        first = fileobj.read(size)
        if len(first) in (0, size):
            return first
        parts, got = [first], len(first)
        while got < size:
            more = fileobj.read(size - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
    except OSError as exc:
        raise IncompleteUpload(f"reading the input failed ({exc}); nothing was stored, retry the upload") from exc
    return b"".join(parts)


def check_expected(size: int, sha256: str, expected_size: int | None, expected_sha256: str | None) -> None:
    """Refuse a truncated or altered upload before anything is registered."""
    if expected_size is not None and size != expected_size:
        raise IncompleteUpload(
            f"upload ended after {size} of {expected_size} bytes; nothing was stored, send the whole file again"
        )
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        raise IncompleteUpload(
            f"upload sha-256 {sha256} differs from the expected {expected_sha256}; nothing was stored, send the file again"
        )


class Ingestor:
    """Running state of one upload: whole-file sha-256, size, and the DAG so far."""

    def __init__(self, sink: BlockSink, cid_version: int = 1, progress: Progress | None = None):
        self._digest = hashlib.sha256()
        self._hashing = Backlog(workers=1, limit=8)  # one worker keeps the chunks in order
        self._builder = DagBuilder(sink, cid_version)
        self._progress = progress
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        """One 256 KiB chunk (only the last may be shorter)."""
        self._hashing.submit(self._digest.update, chunk)
        self._builder.add_chunk(chunk)
        self.size += len(chunk)
        if self._progress:
            self._progress(len(chunk))

    def finish(self, expected_size: int | None = None, expected_sha256: str | None = None) -> PutResult:
        self._hashing.drain()
        self.close()
        sha = self._digest.hexdigest()
        check_expected(self.size, sha, expected_size, expected_sha256)
        return PutResult(str(self._builder.finish()), sha, self.size)

    def close(self) -> None:
        """Stop the hashing thread (idempotent; safe after an error)."""
        self._hashing.close()


def ingest(
    fileobj: BinaryIO,
    sink: BlockSink,
    *,
    cid_version: int = 1,
    progress: Progress | None = None,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> PutResult:
    """Chunk, hash and emit blocks; raise before returning if the input was short."""
    if not hasattr(fileobj, "read"):
        raise ContentError("put_stream needs a binary file object with .read(); use put_bytes for bytes")
    state = Ingestor(sink, cid_version, progress)
    try:
        while chunk := read_chunk(fileobj):
            state.feed(chunk)
        return state.finish(expected_size, expected_sha256)
    finally:
        state.close()
