"""The product bundle: an application's code, its pinned environment and its contract, in one archive.

A bundle is a tar (optionally gzip) archive with ``gridmart-bundle.json`` at its root
(docs/compute.md). This module validates manifests (every error names the field to fix),
packs folders into deterministic archives (same folder, same bytes, same CID) and reads the
manifest of an archive without extracting it. Compute nodes never call ``read_manifest`` in
their own process: they extract and validate inside the sandbox (ledger_node.compute.inspect).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import re
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MANIFEST = "gridmart-bundle.json"
FORMAT = "gridmart-bundle/1"
MAX_BUNDLE_BYTES = 256 << 20
MAX_MANIFEST_BYTES = 256 << 10
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+$")


class BundleError(ValueError):
    """A bundle or manifest that cannot be used; the message names what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Io(_Strict):
    """What a bundle takes or gives: a media type and, for tables, the columns."""

    media_type: str = Field(min_length=3, max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$")
    required: bool = True
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Resources(_Strict):
    """What one job may use; a node caps each at its own maxima."""

    memory_mb: int = Field(1024, ge=64, le=65536)
    cpu_seconds: int = Field(300, ge=1, le=86400)
    wall_seconds: int = Field(600, ge=1, le=86400)
    output_mb: int = Field(64, ge=1, le=4096)
    processes: int = Field(64, ge=1, le=4096)


class Manifest(_Strict):
    format: str
    name: str
    version: str = Field(min_length=1, max_length=64)
    entry_point: str
    requirements: list[str] = Field(default_factory=list, max_length=200)
    input: Io | None = None
    output: Io
    #: compute-to-data: what the data product must be (media type), if the bundle runs on one
    data: Io | None = None
    resources: Resources = Field(default_factory=Resources)
    description: str = Field(default="", max_length=10_000)

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v != FORMAT:
            raise ValueError(f"must be {FORMAT!r}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be 1-64 lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("entry_point")
    @classmethod
    def _entry(cls, v: str) -> str:
        path = PurePosixPath(v)
        if path.is_absolute() or ".." in path.parts or not v.endswith(".py") or "\\" in v:
            raise ValueError("must be a relative path of a .py file inside the bundle")
        return str(path)

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for i, line in enumerate(v):
            text = line.strip()
            try:
                req = Requirement(text)
            except InvalidRequirement:
                raise ValueError(f"[{i}] {line!r} is not a requirement: write name==version") from None
            if not _PIN.match(text) or req.url or req.marker or req.extras:
                raise ValueError(f"[{i}] {line!r} is not pinned: write exactly name==version (no ranges, URLs, "
                                 "markers or extras)")
            name = canonicalize_name(req.name)
            if name in seen:
                raise ValueError(f"[{i}] {req.name} is listed twice")
            seen.add(name)
        return [line.strip() for line in v]

    def pins(self) -> list[str]:
        """The requirements, canonical: lower-case normalised names, sorted."""
        out = []
        for line in self.requirements:
            req = Requirement(line)
            out.append(f"{canonicalize_name(req.name)}=={next(iter(req.specifier)).version}")
        return sorted(out)

    def env_hash(self) -> str:
        """The environment's identity: the interpreter and the pinned requirements (not the code)."""
        doc = {"python": platform.python_version(), "platform": f"{sys.platform}-{platform.machine()}",
               "requirements": self.pins()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def validate(doc: Any) -> Manifest:
    """The manifest, or BundleError naming the first field to fix."""
    if not isinstance(doc, dict):
        raise BundleError(f"{MANIFEST} must hold a JSON object")
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "manifest"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a manifest field (see docs/compute.md)"
        elif err["type"] == "missing":
            message = "is missing"
        raise BundleError(f"{MANIFEST}: field '{field}' {message}") from None


def parse(raw: bytes) -> Manifest:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES >> 10} KiB")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{MANIFEST} is not JSON ({exc})") from None
    return validate(doc)


def check_folder(folder: Path) -> Manifest:
    """Validate an unpacked bundle: its manifest, and that the entry point is there."""
    path = folder / MANIFEST
    if not path.is_file():
        raise BundleError(f"{folder} has no {MANIFEST}: a bundle needs one at its root (docs/compute.md)")
    manifest = parse(path.read_bytes())
    entry = folder / manifest.entry_point
    if not entry.is_file() or entry.is_symlink():
        raise BundleError(f"{MANIFEST}: field 'entry_point' names {manifest.entry_point}, which is not a file "
                          "in the bundle")
    return manifest


def pack(folder: Path) -> bytes:
    """A deterministic .tar.gz of `folder` (sorted names, mtime 0, uid/gid 0, modes 0644/0755);
    the folder must be a valid bundle. Links and special files are refused."""
    check_folder(folder)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise BundleError(f"{rel} is a link or special file: a bundle holds plain files and folders only")
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o755 if path.stat().st_mode & 0o111 else 0o644
                tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is larger than {MAX_BUNDLE_BYTES >> 20} MiB")
    return data


def read_manifest(archive: Path | bytes) -> Manifest:
    """The manifest of a packed bundle, read without extracting anything (the publisher's own
    file, checked before upload); BundleError if it is not a bundle."""
    try:
        fileobj = io.BytesIO(archive) if isinstance(archive, bytes) else open(archive, "rb")
    except OSError as exc:
        raise BundleError(f"cannot read {archive}: {exc.strerror}") from None
    with fileobj:
        try:
            with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
                names = {m.name.removeprefix("./"): m for m in tar.getmembers()}
                member = names.get(MANIFEST)
                if member is None or not member.isfile():
                    raise BundleError(f"the archive has no {MANIFEST} at its root: not a GridMart bundle")
                manifest = parse(tar.extractfile(member).read(MAX_MANIFEST_BYTES + 1))
                entry = names.get(manifest.entry_point)
                if entry is None or not entry.isfile():
                    raise BundleError(f"{MANIFEST}: field 'entry_point' names {manifest.entry_point}, which is "
                                      "not a file in the bundle")
                return manifest
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise BundleError(f"not a tar archive ({exc}): pack the folder with `gridmart bundle pack`") from None


def is_bundle(archive: Path | bytes) -> bool:
    try:
        read_manifest(archive)
        return True
    except BundleError:
        return False
