"""The IPFS-RPC backend against the real js-ipfs daemon (plus unit tests of its checks)."""
from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from content_helpers import MIB, payload
from ledger_node.config import Settings
from ledger_node.content import open_store
from ledger_node.content.errors import ContentNotFound, IncompleteUpload, IntegrityError, StoreUnavailable
from ledger_node.content.importer import compute_cid
from ledger_node.content.ipfs_rpc import RpcStore, to_multiaddr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_open_store_uses_the_daemon_when_configured(ipfs_daemon, tmp_path):
    store = open_store(Settings(home=tmp_path, ipfs_api=ipfs_daemon.api()))
    assert isinstance(store, RpcStore) and store.version == "0.18.1"


def test_round_trip_and_registry(rpc_store):
    data = payload(2 * MIB + 3, seed=1)
    result = rpc_store.put_bytes(data)
    assert result.cid == compute_cid(data) and result.size == len(data)
    assert rpc_store.get_bytes(result.cid) == data
    assert rpc_store.has(result.cid) and result.cid in rpc_store.list()
    rpc_store.unpin(result.cid)
    assert not rpc_store.has(result.cid) and result.cid not in rpc_store.list()
    rpc_store.pin(result.cid)
    assert rpc_store.has(result.cid)
    with pytest.raises(ContentNotFound, match="not pinned"):
        rpc_store.unpin(compute_cid(b"never pinned here"))


def test_v0_on_request(rpc_store):
    result = rpc_store.put_bytes(payload(300_000, seed=2), cid_version=0)
    assert result.cid.startswith("Qm") and rpc_store.has(result.cid)


def test_unknown_cid_is_a_clear_error(rpc_store):
    unknown = compute_cid(b"never added anywhere")
    with pytest.raises(ContentNotFound, match=unknown):
        rpc_store.get_bytes(unknown)
    assert not rpc_store.has(unknown)


def test_unreachable_daemon_names_the_setting_and_never_falls_back(tmp_path):
    api = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(StoreUnavailable, match=f"GRIDMART_IPFS_API={api}"):
        open_store(Settings(home=tmp_path, ipfs_api=api))
    assert not (tmp_path / "content").exists()


def test_api_address_forms():
    assert to_multiaddr("http://127.0.0.1:5001") == "/ip4/127.0.0.1/tcp/5001/http"
    assert to_multiaddr("http://ipfs.local:5001/") == "/dns/ipfs.local/tcp/5001/http"
    assert to_multiaddr("/ip4/10.0.0.1/tcp/5001") == "/ip4/10.0.0.1/tcp/5001"


def test_truncated_upload_is_not_pinned(rpc_store):
    data = payload(3 * MIB, seed=3)
    with pytest.raises(IncompleteUpload, match=f"{MIB} of {3 * MIB} bytes"):
        rpc_store.put_stream(io.BytesIO(data[:MIB]), expected_size=len(data))
    assert not rpc_store.has(compute_cid(data[:MIB])) and not rpc_store.has(compute_cid(data))


def test_corrupt_block_in_the_daemon_repo_is_caught_on_read(rpc_store, ipfs_daemon):
    data = payload(1000, seed=4)
    cid = rpc_store.put_bytes(data).cid
    block_files = [p for p in Path(ipfs_daemon.repo, "blocks").rglob("*.data") if p.read_bytes() == data]
    assert len(block_files) == 1
    block_files[0].write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])
    with pytest.raises(IntegrityError, match=cid):
        rpc_store.get_bytes(cid)


def test_a_wrong_cid_from_the_daemon_is_refused_and_not_pinned(rpc_store, monkeypatch):
    """Unit: the daemon's CID is checked against the one computed while uploading."""
    real_add = rpc_store.client.add
    wrong = compute_cid(b"something else")

    def lying_add(*args, **kwargs):
        reply = dict(real_add(*args, **kwargs))
        return {**reply, "Hash": wrong}

    monkeypatch.setattr(rpc_store.client, "add", lying_add)
    data = payload(4000, seed=5)
    with pytest.raises(IntegrityError, match=wrong):
        rpc_store.put_bytes(data)
    monkeypatch.undo()
    assert not rpc_store.has(compute_cid(data)) and not rpc_store.has(wrong)


def test_a_bad_block_from_the_daemon_is_refused(rpc_store, monkeypatch):
    """Unit twin of the on-disk corruption test: any altered block raises."""
    cid = rpc_store.put_bytes(payload(600_000, seed=6)).cid
    real_get = rpc_store.client.block.get
    monkeypatch.setattr(rpc_store.client.block, "get", lambda c, **kw: real_get(c, **kw)[:-1] + b"\0")
    with pytest.raises(IntegrityError, match=cid):
        rpc_store.verify(cid)
