"""`gridmart ipfs ...`: commands run in-process (the full CLI imports every area and
is slow to start), plus one real `python -m marketplace.cli.main` run for the error line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from coincurve import PrivateKey
from typer.testing import CliRunner

from content_helpers import MIB, payload
from ledger_node.config import get_settings
from ledger_node.errors import GridMartError
from marketplace.cli import ipfs as ipfs_cli

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    stdout: bytes
    error: str


@pytest.fixture
def gridmart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run(*args: str, ok: bool = True, **extra_env) -> Outcome:
        env = {"GRIDMART_HOME": str(tmp_path / "home"), "GRIDMART_IPFS_API": None, **extra_env}
        get_settings.cache_clear()
        result = CliRunner().invoke(ipfs_cli.app, list(args), env=env)
        get_settings.cache_clear()
        error = result.exception
        if error is not None and not isinstance(error, GridMartError):
            raise error
        assert (result.exit_code == 0) == ok, f"{result.output} {error}"
        return Outcome(result.stdout_bytes, str(error or ""))

    return run


def _json(outcome) -> dict:
    return json.loads(outcome.stdout)


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


def test_real_entry_point_prints_one_error_line_and_exits_1(tmp_path):
    unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    env = {**os.environ, "GRIDMART_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("GRIDMART_IPFS_API", None)
    proc = subprocess.run([sys.executable, "-m", "marketplace.cli.main", "ipfs", "get", unknown],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: block {unknown} is not in the embedded store") and proc.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]  # no partial output file


def test_bad_input_errors(gridmart, tmp_path):
    unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert gridmart("verify", "not-a-cid", ok=False).error.startswith("invalid CID")
    outcome = gridmart("cat", unknown, ok=False, GRIDMART_IPFS_API="http://127.0.0.1:9")
    assert "GRIDMART_IPFS_API=http://127.0.0.1:9 is unreachable" in outcome.error


def test_corrupt_store_fails_verify(gridmart, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(payload(600_000, seed=51))
    cid = _json(gridmart("add", str(src), "--json"))["cid"]
    (pack,) = (tmp_path / "home" / "content" / "packs").iterdir()
    raw = bytearray(pack.read_bytes())
    raw[7] ^= 0xFF  # inside the first leaf
    pack.write_bytes(bytes(raw))
    assert gridmart("verify", cid, ok=False).error.startswith(f"content {cid} failed its integrity check")


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
    outcome = gridmart("cat", added["cid"], "--wrapped-key", added["wrapped_keys"][pubs[0]], "--key-file", str(key_file), ok=False)
    assert "not wrapped for this wallet" in outcome.error
    assert "--recipient" in gridmart("add", str(src), "--encrypt", ok=False).error


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
