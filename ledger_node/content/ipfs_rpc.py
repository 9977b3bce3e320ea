"""Backend for a Kubo-RPC-compatible daemon (Kubo, or the js-ipfs we run in tests).

The daemon chunks and stores; we compute the same DAG locally while streaming
the upload, so a CID the daemon returns is checked, not trusted. Reads fetch
blocks one by one and re-hash them here. "Stored" means pinned: an upload is
pinned only after it was read whole and its CID matched.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import ipfshttpclient
from ipfshttpclient import exceptions as ipfs_exc

from .cid import CID, parse
from .errors import ContentError, ContentNotFound, IntegrityError, StoreUnavailable
from .importer import CHUNK_SIZE
from .ingest import Ingestor, Progress, PutResult, read_chunk
from .store import ContentStore

UPLOAD_CHUNK = 1024 * 1024  # HTTP body pieces (ipfshttpclient defaults to 8 KiB: 128x more writes)


def to_multiaddr(api: str) -> str:
    """Accept ``/ip4/…/tcp/5001[/http]`` or ``http://host:port``."""
    if api.startswith("/"):
        return api
    match = re.fullmatch(r"(https?)://([^:/]+):(\d+)/?", api.strip())
    if not match:
        raise ContentError(f"GRIDMART_IPFS_API={api!r} is not a multiaddr or http://host:port URL; fix the setting")
    scheme, host, port = match.groups()
    proto = "ip4" if re.fullmatch(r"[\d.]+", host) else "dns"
    return f"/{proto}/{host}/tcp/{port}/{scheme}"


class _TeeUpload:
    """File-like view of the source for the HTTP upload that also builds the DAG locally.

    Reads the source in exact 256 KiB chunks (so the local CID matches), and at
    EOF refuses a short or altered upload *before* the multipart body closes,
    which makes the daemon drop the request instead of adding a truncated file.
    """

    def __init__(self, src: BinaryIO, state: Ingestor, expected_size, expected_sha256):
        self._src, self._state = src, state
        self._expected = (expected_size, expected_sha256)
        self._pending = memoryview(b"")
        self.result: PutResult | None = None
        self.error: Exception | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            if not self._pending:
                if self.result is not None:
                    return b""
                chunk = read_chunk(self._src, CHUNK_SIZE)
                if not chunk:
                    self.result = self._state.finish(*self._expected)
                    return b""
                self._state.feed(chunk)
                self._pending = memoryview(chunk)
        except ContentError as exc:
            self.error = exc
            raise
        n = len(self._pending) if n is None or n < 0 else n
        out, self._pending = self._pending[:n], self._pending[n:]
        return bytes(out)


class RpcStore(ContentStore):
    """Talk to the daemon at ``api``; every failure to reach it names GRIDMART_IPFS_API."""

    def __init__(self, api: str, *, timeout: float = 60.0, probe_timeout: float = 3.0):
        self.api = api
        self._timeout, self._probe = timeout, probe_timeout
        try:
            self.client = ipfshttpclient.Client(to_multiaddr(api), timeout=timeout)
        except ipfs_exc.AddressError as exc:
            raise ContentError(f"GRIDMART_IPFS_API={api!r} is not a valid address ({exc}); fix the setting") from None
        self.client.chunk_size = UPLOAD_CHUNK
        with self._calls("reach"):
            self.version = self.client.version()["Version"]

    @contextmanager
    def _calls(self, what: str):
        try:
            yield
        except ipfs_exc.ConnectionError:
            raise StoreUnavailable(
                f"IPFS daemon at GRIDMART_IPFS_API={self.api} is unreachable ({what}); "
                "start it (python scripts/ipfs_daemon.py start) or unset GRIDMART_IPFS_API for the embedded store"
            ) from None
        except ipfs_exc.TimeoutError:
            raise StoreUnavailable(
                f"IPFS daemon at GRIDMART_IPFS_API={self.api} did not answer in time ({what}); check that it is healthy"
            ) from None
        except ipfs_exc.ErrorResponse as exc:
            raise ContentError(f"IPFS daemon at {self.api} refused to {what}: {exc}") from None

    def put_stream(
        self,
        fileobj: BinaryIO,
        *,
        cid_version: int = 1,
        progress: Progress | None = None,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> PutResult:
        state = Ingestor(lambda cid, block: None, cid_version, progress)
        tee = _TeeUpload(fileobj, state, expected_size, expected_sha256)
        try:
            with self._calls("add the file"):
                reply = self.client.add(
                    tee, cid_version=cid_version, raw_leaves=cid_version == 1, pin=False, chunker=f"size-{CHUNK_SIZE}"
                )
        except Exception:
            if tee.error is not None:
                raise tee.error from None
            raise
        finally:
            state.close()
        if tee.result is None:
            raise ContentError(f"IPFS daemon at {self.api} answered before reading the whole upload; nothing was pinned, retry")
        daemon_cid = str(parse(reply["Hash"]))
        if daemon_cid != tee.result.cid:
            raise IntegrityError(
                f"IPFS daemon returned CID {daemon_cid} but the bytes hash to {tee.result.cid}; nothing was pinned, check the daemon's add settings"
            )
        self.pin(daemon_cid)
        return tee.result

    def get_block(self, cid: CID, *, timeout: float | None = None) -> bytes:
        try:
            with self._calls(f"return block {cid}"):
                data = self.client.block.get(str(cid), timeout=timeout or self._timeout)
        except StoreUnavailable:
            if timeout is None:
                raise
            raise ContentNotFound(f"{cid} is not on the IPFS daemon at {self.api} (no answer within {timeout:g} s); add it first") from None
        if not cid.verify(data):
            raise IntegrityError(f"block {cid} returned by the IPFS daemon does not match its hash; the daemon's repo is corrupt")
        return data

    def get_stream(self, cid: "str | CID") -> Iterator[bytes]:
        root = parse(cid)
        self.get_block(root, timeout=self._probe)  # a missing block would otherwise be searched for until timeout
        return super().get_stream(root)

    def size(self, cid: "str | CID") -> int:
        self.get_block(parse(cid), timeout=self._probe)
        return super().size(cid)

    def has(self, cid: "str | CID") -> bool:
        try:
            with self._calls("list pins"):
                self.client.pin.ls(str(parse(cid)), type="recursive")
        except ContentError as exc:
            if "not pinned" in str(exc):
                return False
            raise
        return True

    def pin(self, cid: "str | CID") -> None:
        with self._calls(f"pin {cid}"):
            self.client.pin.add(str(parse(cid)), timeout=self._timeout)

    def unpin(self, cid: "str | CID") -> None:
        try:
            with self._calls(f"unpin {cid}"):
                self.client.pin.rm(str(parse(cid)))
        except ContentError as exc:
            if "not pinned" in str(exc):
                raise ContentNotFound(f"{cid} is not pinned on the IPFS daemon at {self.api}; see `list()`") from None
            raise

    def list(self) -> list[str]:
        with self._calls("list pins"):
            keys = self.client.pin.ls(type="recursive")["Keys"]
        return sorted(str(parse(key)) for key in keys)

    def import_car(self, fileobj: BinaryIO) -> list[str]:
        """Hand the CAR to the daemon's ``dag/import`` (it checks hashes and pins the roots)."""
        with self._calls("import the CAR file"):
            replies = self.client.dag.imprt(fileobj)
        replies = replies if isinstance(replies, list) else [replies]
        return [str(parse(r["Root"]["Cid"]["/"])) for r in replies if "Root" in r]
