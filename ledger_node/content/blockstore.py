"""Blocks on local disk, one file per block, written all-or-nothing.

A put writes its blocks into a private staging folder and only renames them
into ``blocks/`` once the whole input was read and checked; the caller then
records the pin, which is the commit point. A crash or error leaves at most
unreferenced, hash-valid blocks, never a half-registered artifact.
"""
from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

from .background import Backlog
from .cid import CID
from .errors import ContentNotFound, IntegrityError, OutOfSpace

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def out_of_space(exc: OSError, where: Path) -> OutOfSpace:
    return OutOfSpace(f"no space left while writing under {where} ({exc.strerror}); nothing was stored, free disk space and retry")


class FsBlockstore:
    """``root/blocks/<2 chars>/<cidv1>``; staging under ``root/staging``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blocks = self.root / "blocks"
        self.staging = self.root / "staging"
        self.blocks.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def path(self, cid: CID) -> Path:
        name = str(cid.v1())
        return self.blocks / name[-3:-1] / name

    def has(self, cid: CID) -> bool:
        return self.path(cid).exists()

    def get(self, cid: CID) -> bytes:
        """The block's bytes, re-hashed: a flipped bit raises IntegrityError naming the block."""
        path = self.path(cid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(f"block {cid} is not in the embedded store at {self.root}; add the file or import its CAR") from None
        if not cid.verify(data):
            raise IntegrityError(f"block {cid} on disk ({path}) does not match its hash; re-add or re-import the content")
        return data

    def transaction(self) -> "Staging":
        return Staging(self)


class Staging:
    """Blocks of one put, kept aside until :meth:`commit`; :meth:`abort` drops them."""

    def __init__(self, store: FsBlockstore):
        self.store = store
        self.dir = store.staging / uuid.uuid4().hex
        self.dir.mkdir()
        self._pending: dict[str, tuple[Path, Path]] = {}
        self._writes = Backlog(workers=2, limit=16)

    def put(self, cid: CID, data: bytes) -> None:
        name = str(cid.v1())
        if name in self._pending:
            return
        final = self.store.path(cid)
        if final.exists():
            return
        tmp = self.dir / name
        self._writes.submit(self._write, tmp, data)
        self._pending[name] = (tmp, final)

    def _write(self, tmp: Path, data: bytes) -> None:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise out_of_space(exc, self.store.root) from exc
            raise

    def get(self, cid: CID) -> bytes:
        """A block from this put if staged here, else from the store."""
        pending = self._pending.get(str(cid.v1()))
        if pending is None:
            return self.store.get(cid)
        self._writes.drain()
        data = pending[0].read_bytes()
        if not cid.verify(data):
            raise IntegrityError(f"staged block {cid} does not match its hash; retry the import")
        return data

    def commit(self) -> None:
        made: set[Path] = set()
        try:
            self._writes.drain()
            for tmp, final in self._pending.values():
                if final.parent not in made:
                    final.parent.mkdir(exist_ok=True)
                    made.add(final.parent)
                os.replace(tmp, final)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise out_of_space(exc, self.store.root) from exc
            raise
        finally:
            self.abort()

    def abort(self) -> None:
        self._writes.close()
        shutil.rmtree(self.dir, ignore_errors=True)
