"""CAR v1 export/import between the embedded store and the real js-ipfs daemon."""
from __future__ import annotations

import io

import httpx
import pytest

from content_helpers import MIB, leftovers, payload
from ledger_node.content.car import read_car
from ledger_node.content.daemon import api_url
from ledger_node.content.errors import ContentError, IntegrityError


@pytest.fixture
def daemon_url(ipfs_daemon) -> str:
    return api_url(ipfs_daemon.api()) + "/api/v0"


@pytest.mark.parametrize("version,size", [(1, 0), (1, 3 * MIB + 1), (0, 3 * MIB + 1)])
def test_embedded_export_is_byte_identical_to_the_daemons_and_imports_there(store, daemon_url, rpc_store, version, size):
    data = payload(size, seed=10 + version)
    cid = store.put_bytes(data, cid_version=version).cid
    ours = io.BytesIO()
    store.export_car(cid, ours)
    rpc_store.put_bytes(data, cid_version=version)
    theirs = httpx.post(f"{daemon_url}/dag/export", params={"arg": cid}, timeout=60).content
    assert ours.getvalue() == theirs

    fresh = payload(size + 17, seed=20 + version)
    fresh_cid = store.put_bytes(fresh, cid_version=version).cid
    car = io.BytesIO()
    store.export_car(fresh_cid, car)
    car.seek(0)
    assert rpc_store.import_car(car) == [fresh_cid]
    assert rpc_store.has(fresh_cid) and rpc_store.get_bytes(fresh_cid) == fresh


def test_daemon_export_imports_into_the_embedded_store(store, rpc_store, daemon_url):
    data = payload(2 * MIB + 9, seed=30)
    cid = rpc_store.put_bytes(data).cid
    car = httpx.post(f"{daemon_url}/dag/export", params={"arg": cid}, timeout=60).content
    assert store.import_car(io.BytesIO(car)) == [cid]
    assert store.has(cid) and store.get_bytes(cid) == data and store.info(cid).size == len(data)


def _car_of(store, data: bytes) -> tuple[str, bytes]:
    cid = store.put_bytes(data).cid
    out = io.BytesIO()
    store.export_car(cid, out)
    return cid, out.getvalue()


def test_corrupt_car_is_refused_and_nothing_lands(store, tmp_path):
    from ledger_node.content.embedded import EmbeddedStore

    cid, car = _car_of(store, payload(MIB, seed=31))
    bad = bytearray(car)
    bad[-1000] ^= 0x01
    target = EmbeddedStore(tmp_path / "other")
    with pytest.raises(IntegrityError, match="bafkrei"):
        target.import_car(io.BytesIO(bytes(bad)))
    assert target.list() == [] and leftovers(target) == []


def test_car_missing_a_block_is_refused_and_nothing_lands(store, tmp_path):
    from ledger_node.content.embedded import EmbeddedStore

    cid, car = _car_of(store, payload(MIB, seed=32))
    roots, blocks = read_car(io.BytesIO(car))
    sections = list(blocks)
    assert len(sections) == 5 and str(roots[0]) == cid
    truncated = car[: len(car) - (len(sections[-1][1]) + 36 + 3)]  # drop the last section
    target = EmbeddedStore(tmp_path / "other")
    with pytest.raises(ContentError, match="incomplete|truncated"):
        target.import_car(io.BytesIO(truncated))
    assert target.list() == [] and leftovers(target) == []


def test_not_a_car_file(store):
    with pytest.raises(ContentError, match="CAR"):
        store.import_car(io.BytesIO(b"\x05hello world"))
