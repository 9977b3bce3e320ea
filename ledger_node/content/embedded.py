"""The default store: blocks on local disk under the data folder, no daemon needed."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import BinaryIO

from .blockstore import FsBlockstore
from .car import read_car
from .cid import CID, parse
from .errors import ContentError, ContentNotFound
from .exporter import iter_file, walk_blocks
from .ingest import Progress, PutResult, ingest
from .store import ContentStore


class EmbeddedStore(ContentStore):
    """Blocks in packs under ``root`` (see blockstore); a pin record in ``root/pins`` registers an artifact."""

    def __init__(self, root: "str | os.PathLike[str]"):
        self.root = Path(root)
        try:
            self.blocks = FsBlockstore(self.root)
            self.pins = self.root / "pins"
            self.pins.mkdir(exist_ok=True)
        except OSError as exc:
            raise ContentError(f"cannot create the content store at {self.root}: {exc.strerror}; set GRIDMART_HOME to a writable folder") from exc

    def put_stream(
        self,
        fileobj: BinaryIO,
        *,
        cid_version: int = 1,
        progress: Progress | None = None,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> PutResult:
        staging = self.blocks.transaction()
        try:
            result = ingest(
                fileobj,
                staging.put,
                cid_version=cid_version,
                progress=progress,
                expected_size=expected_size,
                expected_sha256=expected_sha256,
            )
            staging.commit()
        finally:
            staging.abort()
        self._record(result)
        return result

    def _record(self, result: PutResult) -> None:
        """Write the pin record atomically: this is the moment the artifact exists."""
        path = self.pins / f"{result.cid}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cid": result.cid, "sha256": result.sha256, "size": result.size}))
        os.replace(tmp, path)

    def get_block(self, cid: CID) -> bytes:
        return self.blocks.get(cid)

    def has(self, cid: "str | CID") -> bool:
        return (self.pins / f"{parse(cid)}.json").exists()

    def pin(self, cid: "str | CID") -> None:
        """Register content whose blocks are all present (each is re-checked)."""
        root = parse(cid)
        digest, size = hashlib.sha256(), 0
        for piece in iter_file(self.get_block, root):
            digest.update(piece)
            size += len(piece)
        self._record(PutResult(str(root), digest.hexdigest(), size))

    def unpin(self, cid: "str | CID") -> None:
        """Unregister; the blocks stay (other artifacts may share them)."""
        try:
            (self.pins / f"{parse(cid)}.json").unlink()
        except FileNotFoundError:
            raise ContentNotFound(f"{cid} is not pinned in the embedded store; see `list()`") from None

    def list(self) -> list[str]:
        return sorted(p.stem for p in self.pins.glob("*.json"))

    def info(self, cid: "str | CID") -> PutResult:
        """The sha-256 and size recorded when the artifact was stored."""
        try:
            record = json.loads((self.pins / f"{parse(cid)}.json").read_text())
        except FileNotFoundError:
            raise ContentNotFound(f"{cid} is not in the embedded store at {self.root}; add it first") from None
        return PutResult(**record)

    def import_car(self, fileobj: BinaryIO) -> list[str]:
        roots, blocks = read_car(fileobj)
        staging = self.blocks.transaction()
        try:
            for cid, data in blocks:
                staging.put(cid, data)
            for root in roots:  # every block each root needs must be here before anything lands
                for _ in walk_blocks(staging.get, root):
                    pass
            staging.commit()
        except ContentNotFound as exc:
            raise ContentError(f"CAR file is incomplete: {exc}; export the whole DAG again") from None
        finally:
            staging.abort()
        for root in roots:
            self.pin(root)
        return [str(root) for root in roots]
