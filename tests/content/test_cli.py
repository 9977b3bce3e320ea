"""`gridmart ipfs ...` end to end, as a user runs it (a child process per command)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from coincurve import PrivateKey

from content_helpers import MIB, payload

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gridmart(tmp_path):
    env = {**os.environ, "GRIDMART_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("GRIDMART_IPFS_API", None)

    def run(*args: str, ok: bool = True, **extra_env) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "marketplace.cli.main", "ipfs", *args],
            capture_output=True, env={**env, **extra_env}, cwd=tmp_path, timeout=120,
        )
        assert (proc.returncode == 0) == ok, proc.stderr.decode()
        return proc

    return run


def _json(proc) -> dict:
    return json.loads(proc.stdout)


def test_add_get_cat_verify_round_trip(gridmart, tmp_path):
    data = payload(3 * MIB + 1, seed=50)
    src = tmp_path / "readings.bin"
    src.write_bytes(data)
    added = _json(gridmart("add", str(src), "--json"))
    cid = added["cid"]
    assert added["size"] == len(data) and cid.startswith("bafybei")
    assert _json(gridmart("add", str(src), "--cid-version", "0", "--json"))["cid"].startswith("Qm")
    got = _json(gridmart("get", cid, "-o", str(tmp_path / "out.bin"), "--sha256", added["sha256"], "--json"))
    assert (tmp_path / "out.bin").read_bytes() == data and got["sha256"] == added["sha256"]
    assert gridmart("cat", cid).stdout == data
    assert _json(gridmart("verify", cid, "--sha256", added["sha256"], "--json"))["ok"] is True
    text = gridmart("verify", cid).stdout.decode()
    assert "ok: True" in text and f"size: {len(data)}" in text


def test_errors_are_one_line_and_exit_1(gridmart, tmp_path):
    unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    proc = gridmart("get", unknown, ok=False)
    assert proc.stderr.decode().startswith(f"error: block {unknown} is not in the embedded store")
    assert not (tmp_path / unknown).exists() and not (tmp_path / f".{unknown}.part").exists()
    proc = gridmart("verify", "not-a-cid", ok=False)
    assert proc.stderr.decode().startswith("error: invalid CID")
    proc = gridmart("cat", unknown, ok=False, GRIDMART_IPFS_API="http://127.0.0.1:9")
    assert "GRIDMART_IPFS_API=http://127.0.0.1:9 is unreachable" in proc.stderr.decode()


def test_corrupt_store_fails_verify(gridmart, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(payload(600_000, seed=51))
    cid = _json(gridmart("add", str(src), "--json"))["cid"]
    blocks = sorted((tmp_path / "home" / "content" / "blocks").rglob("bafkrei*"))
    raw = bytearray(blocks[0].read_bytes())
    raw[7] ^= 0xFF
    blocks[0].write_bytes(bytes(raw))
    proc = gridmart("verify", cid, ok=False)
    assert proc.stderr.decode().startswith(f"error: content {cid} failed its integrity check")


def test_encrypted_add_and_decrypting_get(gridmart, tmp_path):
    publisher, subscriber = PrivateKey(), PrivateKey()
    data = payload(2 * MIB + 3, seed=52)
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    pubs = [publisher.public_key.format(False)[1:].hex(), subscriber.public_key.format(True).hex()]
    added = _json(gridmart("add", str(src), "--encrypt", "--recipient", pubs[0], "--recipient", pubs[1], "--json"))
    assert set(added["wrapped_keys"]) == set(pubs) and added["plaintext_size"] == len(data)
    assert gridmart("cat", added["cid"]).stdout != data  # stored bytes are ciphertext
    key_file = tmp_path / "subscriber.key"
    key_file.write_text(subscriber.secret.hex())
    gridmart("get", added["cid"], "-o", str(tmp_path / "plain.bin"), "--wrapped-key", added["wrapped_keys"][pubs[1]],
             "--key-file", str(key_file), "--sha256", added["plaintext_sha256"])
    assert (tmp_path / "plain.bin").read_bytes() == data
    proc = gridmart("cat", added["cid"], "--wrapped-key", added["wrapped_keys"][pubs[0]], "--key-file", str(key_file), ok=False)
    assert "not wrapped for this wallet" in proc.stderr.decode()
    assert "--recipient" in gridmart("add", str(src), "--encrypt", ok=False).stderr.decode()


def test_car_export_import_via_cli(gridmart, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(payload(700_000, seed=53))
    cid = _json(gridmart("add", str(src), "--json"))["cid"]
    gridmart("export-car", cid, str(tmp_path / "a.car"))
    other = {"GRIDMART_HOME": str(tmp_path / "other-home")}
    assert _json(gridmart("import-car", str(tmp_path / "a.car"), "--json", **other))["roots"] == [cid]
    assert gridmart("cat", cid, **other).stdout == src.read_bytes()


def test_cli_against_the_daemon(gridmart, tmp_path, ipfs_daemon):
    src = tmp_path / "a.bin"
    src.write_bytes(payload(900_000, seed=54))
    api = {"GRIDMART_IPFS_API": ipfs_daemon.api()}
    embedded = _json(gridmart("add", str(src), "--json"))["cid"]
    assert _json(gridmart("add", str(src), "--json", **api))["cid"] == embedded
    assert gridmart("cat", embedded, **api).stdout == src.read_bytes()
