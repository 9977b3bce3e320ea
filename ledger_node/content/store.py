"""The content-store interface every backend implements, and ``open_store``."""
from __future__ import annotations

import io
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .car import write_car
from .cid import CID, RAW, parse
from .errors import ContentError
from .exporter import iter_file, walk_blocks
from .ingest import Progress, PutResult
from .unixfs import decode


class ContentStore(ABC):
    """Put artifacts in, get them back by CID; every read is hash-checked."""

    # -- writing -----------------------------------------------------------
    @abstractmethod
    def put_stream(
        self,
        fileobj: BinaryIO,
        *,
        cid_version: int = 1,
        progress: Progress | None = None,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> PutResult:
        """Store a stream; it is registered (pinned) only if read whole and as expected."""

    def put_bytes(self, data: bytes, *, cid_version: int = 1) -> PutResult:
        return self.put_stream(io.BytesIO(data), cid_version=cid_version, expected_size=len(data))

    def put_file(self, path: "str | os.PathLike[str]", *, cid_version: int = 1, progress: Progress | None = None) -> PutResult:
        path = Path(path)
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise ContentError(f"cannot open {path}: {exc.strerror}; check the path") from exc
        with fh:
            return self.put_stream(fh, cid_version=cid_version, progress=progress, expected_size=os.fstat(fh.fileno()).st_size)

    # -- reading -----------------------------------------------------------
    @abstractmethod
    def get_block(self, cid: CID) -> bytes:
        """One block, verified against its CID (ContentNotFound / IntegrityError otherwise)."""

    def get_stream(self, cid: "str | CID") -> Iterator[bytes]:
        """The artifact's bytes in pieces of at most 256 KiB; memory stays bounded."""
        root = parse(cid)
        self.get_block(root)  # fail now, not on first iteration, for an unknown CID
        return iter_file(self.get_block, root)

    def get_bytes(self, cid: "str | CID") -> bytes:
        return b"".join(self.get_stream(cid))

    def size(self, cid: "str | CID") -> int:
        """The artifact's size in bytes, from its root block alone."""
        root = parse(cid)
        block = self.get_block(root)
        return len(block) if root.codec == RAW else decode(block).filesize

    def verify(self, cid: "str | CID") -> int:
        """Read every block back and check it; returns the file size."""
        return sum(len(piece) for piece in self.get_stream(cid))

    # -- registry ----------------------------------------------------------
    @abstractmethod
    def has(self, cid: "str | CID") -> bool:
        """True when the artifact is registered (pinned) here."""

    @abstractmethod
    def pin(self, cid: "str | CID") -> None: ...

    @abstractmethod
    def unpin(self, cid: "str | CID") -> None: ...

    @abstractmethod
    def list(self) -> list[str]:
        """CIDs of the registered (pinned) artifacts."""

    # -- CAR ---------------------------------------------------------------
    def export_car(self, cid: "str | CID", fileobj: BinaryIO) -> int:
        """Write the artifact's DAG as a CAR v1 file any IPFS node can import; returns bytes written."""
        root = parse(cid)
        return write_car(root, walk_blocks(self.get_block, root), fileobj)

    @abstractmethod
    def import_car(self, fileobj: BinaryIO) -> list[str]:
        """Import a CAR v1 file (every block hash-checked) and pin its roots."""


def open_store(settings=None) -> ContentStore:
    """The daemon store when GRIDMART_IPFS_API is set (never falling back), else the embedded one."""
    if settings is None:
        from ledger_node.config import get_settings

        settings = get_settings()
    if settings.ipfs_api:
        from .ipfs_rpc import RpcStore

        return RpcStore(settings.ipfs_api)
    from .embedded import EmbeddedStore

    return EmbeddedStore(Path(settings.home) / "content")
