"""Embedded store: round trips, registry, streaming, integrity on read, bad input."""
from __future__ import annotations

import errno
import hashlib
import io
import subprocess
import sys
import textwrap

import aleph_cid
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_helpers import MIB, leftovers, payload
from ledger_node.config import Settings
from ledger_node.content import ContentStore, PutResult, open_store
from ledger_node.content import blockstore as blockstore_module
from ledger_node.content.cid import parse
from ledger_node.content.embedded import EmbeddedStore
from ledger_node.content.errors import ContentNotFound, IncompleteUpload, IntegrityError, OutOfSpace
from ledger_node.content.unixfs import decode


class Dribble(io.RawIOBase):
    """A pipe-like source returning short, uneven reads."""

    def __init__(self, data: bytes, step: int):
        self._data, self._pos, self._step = data, 0, step

    def readable(self):
        return True

    def read(self, n=-1):
        piece = self._data[self._pos : self._pos + min(n if n > 0 else self._step, self._step)]
        self._pos += len(piece)
        return piece


def test_open_store_defaults_to_embedded_under_home(tmp_path):
    store = open_store(Settings(home=tmp_path, ipfs_api=None))
    assert isinstance(store, EmbeddedStore) and isinstance(store, ContentStore)
    assert store.root == tmp_path / "content"


def test_put_get_has_pin_list(store):
    data = payload(3 * MIB + 5)
    result = store.put_bytes(data)
    assert result == PutResult(result.cid, hashlib.sha256(data).hexdigest(), len(data))
    assert store.get_bytes(result.cid) == data
    assert b"".join(store.get_stream(result.cid)) == data
    assert max(len(piece) for piece in store.get_stream(result.cid)) <= 256 * 1024
    assert store.has(result.cid) and store.list() == [result.cid]
    assert store.info(result.cid) == result
    store.unpin(result.cid)
    assert not store.has(result.cid) and store.list() == []
    assert store.get_bytes(result.cid) == data  # blocks stay; only the registration went
    store.pin(result.cid)
    assert store.list() == [result.cid]
    with pytest.raises(ContentNotFound, match="not pinned"):
        store.unpin("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")


def test_put_file_and_stream_with_short_reads_give_the_same_cid(store, tmp_path):
    data = payload(MIB + 12345)
    path = tmp_path / "a.bin"
    path.write_bytes(data)
    seen = []
    by_file = store.put_file(path, progress=seen.append)
    by_stream = store.put_stream(Dribble(data, 7777))
    assert by_file == by_stream and sum(seen) == len(data)
    assert store.put_bytes(data, cid_version=0).cid.startswith("Qm")


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048) | st.integers(0, 700_000).map(payload), step=st.integers(1, 300_000))
def test_any_bytes_any_read_pattern_match_aleph_cid(store, data, step):
    result = store.put_stream(Dribble(data, step))
    hasher = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
    hasher.update(data)
    assert result.cid == hasher.finalize()
    assert store.get_bytes(result.cid) == data


def test_unknown_cid_is_a_clear_error(store):
    with pytest.raises(ContentNotFound, match="bafkreigh2akiscaildc"):
        store.get_bytes("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
    assert not store.has("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")


@pytest.mark.parametrize("version", [0, 1])
def test_flipped_byte_in_a_leaf_raises_integrity_error_naming_the_cid(store, version):
    data = payload(MIB)
    cid = store.put_bytes(data, cid_version=version).cid
    leaf = decode(store.get_block(parse(cid))).links[2].cid
    path, offset, _ = store.blocks.locate(leaf)
    raw = bytearray(path.read_bytes())
    raw[offset + 100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError) as err:
        store.get_bytes(cid)
    assert cid in str(err.value) and str(leaf) in str(err.value)
    with pytest.raises(IntegrityError):
        store.verify(cid)


def test_flipped_byte_in_the_root_fails_before_any_byte_is_returned(store):
    cid = store.put_bytes(b"a small artifact").cid
    path, offset, length = store.blocks.locate(parse(cid))
    assert path.read_bytes()[offset : offset + length] == b"a small artifact"
    path.write_bytes(b"A small artifact")
    with pytest.raises(IntegrityError, match=cid):
        store.get_stream(cid)


def test_truncated_upload_stores_nothing(store):
    data = payload(MIB)
    with pytest.raises(IncompleteUpload, match=f"{MIB // 2} of {MIB} bytes"):
        store.put_stream(io.BytesIO(data[: MIB // 2]), expected_size=MIB)
    with pytest.raises(IncompleteUpload, match="sha-256"):
        store.put_stream(io.BytesIO(data), expected_sha256="00" * 32)
    assert store.list() == [] and leftovers(store) == []


def test_source_failing_midway_stores_nothing(store):
    class Broken(io.RawIOBase):
        calls = 0

        def read(self, n=-1):
            Broken.calls += 1
            if Broken.calls > 3:
                raise ConnectionResetError(errno.ECONNRESET, "connection reset by peer")
            return b"x" * n

    with pytest.raises(IncompleteUpload, match="connection reset"):
        store.put_stream(Broken())
    assert store.list() == [] and leftovers(store) == []


def test_enospc_while_writing_stores_nothing(store, monkeypatch):
    real_open = open

    class FillsUp:
        """A pack file on a disk that is full after two blocks."""

        def __init__(self, fh):
            self._fh, self._writes = fh, 0

        def write(self, data):
            self._writes += 1
            if self._writes > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self._fh.write(data)

        def __getattr__(self, name):
            return getattr(self._fh, name)

    monkeypatch.setattr(blockstore_module, "open", lambda *a, **kw: FillsUp(real_open(*a, **kw)), raising=False)
    with pytest.raises(OutOfSpace, match="free disk space"):
        store.put_bytes(payload(2 * MIB))
    monkeypatch.undo()
    assert store.list() == [] and leftovers(store) == []


def test_real_file_size_limit_hits_out_of_space_and_stores_nothing(tmp_path):
    """The kernel refuses writes past RLIMIT_FSIZE (EFBIG): a real out-of-space path."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {str(blockstore_module.__file__.rsplit('/ledger_node/', 1)[0])!r})
        from ledger_node.content.embedded import EmbeddedStore
        from ledger_node.content.errors import OutOfSpace
        store = EmbeddedStore({str(tmp_path / 'content')!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            store.put_bytes(b"a" * 50_000 + bytes(range(256)) * 2000)
        except OutOfSpace as exc:
            print("OutOfSpace:", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("OutOfSpace: no space left"), out.stderr
    store = EmbeddedStore(tmp_path / "content")
    assert store.list() == [] and leftovers(store) == []
    assert store.blocks.locate(parse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")) is None


def test_memory_stays_bounded_for_a_large_stream(tmp_path):
    """512 MiB in and out of the store in a child process; its peak RSS stays small."""
    script = textwrap.dedent(
        f"""
        import re, sys
        sys.path.insert(0, {str(blockstore_module.__file__.rsplit('/ledger_node/', 1)[0])!r})
        from ledger_node.content.embedded import EmbeddedStore

        class Zeros:
            left = 512 * 1024 * 1024
            block = bytes(range(256)) * 4096
            def read(self, n=-1):
                n = min(n, self.left, len(self.block))
                self.left -= n
                return self.block[:n]

        store = EmbeddedStore({str(tmp_path / 'content')!r})
        result = store.put_stream(Zeros())
        total = sum(len(p) for p in store.get_stream(result.cid))
        # VmHWM, not ru_maxrss: the latter keeps the forking pytest's peak across exec
        peak_kib = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
        print(total, peak_kib // 1024)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    total, peak_mib = map(int, out.stdout.split())
    assert total == 512 * 1024 * 1024
    assert peak_mib < 100, f"peak RSS {peak_mib} MiB"
