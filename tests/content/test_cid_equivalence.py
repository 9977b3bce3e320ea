"""The embedded store's CIDs equal those of the js-ipfs daemon, ipfs-only-hash and aleph-cid."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import aleph_cid
import pytest

from ledger_node.content.cid import parse
from ledger_node.content.unixfs import decode

from content_helpers import SIZES, TWO_LEVEL_SIZE

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def embedded_cids(sample_files, tmp_path_factory):
    from ledger_node.content.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path_factory.mktemp("equiv") / "content")
    return store, {(v, size): store.put_file(path, cid_version=v) for size, path in sample_files.items() for v in (0, 1)}


@pytest.fixture(scope="session")
def only_hash_cids(sample_files, node_bin):
    cids = {}
    for version in (0, 1):
        files = [str(sample_files[size]) for size in SIZES]
        out = subprocess.run(
            [node_bin, str(HERE / "only_hash.js"), str(version), *files],
            capture_output=True, text=True, check=True, timeout=120, cwd=HERE.parents[1],
        ).stdout
        cids.update({(version, size): cid for size, cid in zip(SIZES, json.loads(out), strict=True)})
    return cids


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", SIZES)
def test_cid_matches_js_ipfs_daemon(size, version, embedded_cids, ipfs_daemon, rpc_store, sample_files):
    ours = embedded_cids[1][(version, size)]
    client = rpc_store.client
    with sample_files[size].open("rb") as fh:
        reply = client.add(fh, cid_version=version, raw_leaves=version == 1, pin=False)
    assert str(parse(reply["Hash"])) == ours.cid


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", SIZES)
def test_cid_matches_ipfs_only_hash(size, version, embedded_cids, only_hash_cids):
    assert only_hash_cids[(version, size)] == embedded_cids[1][(version, size)].cid


@pytest.mark.parametrize("size", SIZES)
def test_cid_matches_aleph_cid(size, embedded_cids, sample_files):
    data = sample_files[size].read_bytes()
    v1 = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
    v1.update(data)
    assert v1.finalize() == embedded_cids[1][(1, size)].cid
    assert aleph_cid.compute_cid(data) == embedded_cids[1][(0, size)].cid


def test_defaults_are_v1_raw_leaves_and_v0_on_request(embedded_cids):
    cids = embedded_cids[1]
    assert cids[(1, 1)].cid.startswith("bafkrei")  # one chunk: the raw leaf is the root
    assert cids[(1, 256 * 1024 + 1)].cid.startswith("bafybei")  # dag-pb root over raw leaves
    assert all(cids[(0, size)].cid.startswith("Qm") for size in SIZES)
    assert cids[(1, 0)].cid == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert cids[(0, 0)].cid == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


@pytest.mark.parametrize("version", [0, 1])
def test_largest_sample_really_has_two_levels(version, embedded_cids):
    store, cids = embedded_cids
    root = decode(store.get_block(parse(cids[(version, TWO_LEVEL_SIZE)].cid)))
    assert len(root.links) == 2 and root.filesize == TWO_LEVEL_SIZE
    first = decode(store.get_block(root.links[0].cid))
    second = decode(store.get_block(root.links[1].cid))
    assert (len(first.links), len(second.links)) == (174, 1)
