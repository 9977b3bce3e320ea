"""Compute-only datasets held by a node: ``<home>/datasets/<cid>`` and ``<cid>.json``.

Added on the data owner's machine (`gridmart compute add-dataset`), never over the
network; the CID is the content store's (same chunking, nothing stored there).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ledger_node.content.importer import CHUNK_SIZE, DagBuilder
from ledger_node.content.ingest import read_chunk
from ledger_node.errors import GridMartError

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CID = re.compile(r"^[a-zA-Z0-9]{10,100}$")


class DatasetError(GridMartError):
    """A dataset cannot be added or is not held here."""


@dataclass(frozen=True)
class Dataset:
    cid: str
    sha256: str
    size: int
    publisher: str


def content_id(path: Path) -> tuple[str, str, int]:
    """(CID, sha-256, size) of a file, read once, as the content store computes them."""
    digest, builder, size = hashlib.sha256(), DagBuilder(lambda cid, block: None), 0
    with open(path, "rb") as fh:
        while chunk := read_chunk(fh, CHUNK_SIZE):
            digest.update(chunk)
            builder.add_chunk(chunk)
            size += len(chunk)
    return str(builder.finish()), digest.hexdigest(), size


def folder(home: Path) -> Path:
    return home / "datasets"


def add(home: Path, source: Path, publisher: str) -> Dataset:
    """Copy `source` into the node's store (atomically) and record who published it."""
    if not _ADDRESS.match(publisher):
        raise DatasetError(f"--publisher {publisher!r} is not an address: give the publisher's 0x… account")
    if not source.is_file():
        raise DatasetError(f"{source} is not a file: give the dataset file to add")
    store = folder(home)
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=store, prefix=".adding-")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        cid, sha, size = content_id(Path(tmp))  # of the copy: what the node will serve to jobs
        dataset = Dataset(cid, sha, size, publisher)
        os.chmod(tmp, 0o444)
        os.replace(tmp, store / cid)
    finally:
        Path(tmp).unlink(missing_ok=True)
    meta = store / f"{cid}.json"
    meta.with_suffix(".tmp").write_text(json.dumps(asdict(dataset)))
    os.replace(meta.with_suffix(".tmp"), meta)
    return dataset


def get(home: Path, cid: str) -> Dataset | None:
    if not _CID.match(cid):
        return None
    try:
        return Dataset(**json.loads((folder(home) / f"{cid}.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def path(home: Path, cid: str) -> Path:
    return folder(home) / cid
