"""Streamed AES-256-GCM artifacts and ECIES-wrapped content keys."""
from __future__ import annotations

import hashlib
import io

import pytest
from coincurve import PrivateKey

from content_helpers import MIB, payload
from ledger_node.content.encryption import (
    HEADER_LEN,
    SEGMENT_SIZE,
    TAG_LEN,
    EncryptingReader,
    decrypt_stream,
    put_encrypted,
    unwrap_key,
    wrap_key,
)
from ledger_node.errors import ContentError, IntegrityError


@pytest.fixture(scope="module")
def wallet():
    return PrivateKey()


def _encrypt(data: bytes, **kw) -> tuple[bytes, EncryptingReader]:
    reader = EncryptingReader(io.BytesIO(data), **kw)
    out = b"".join(iter(lambda: reader.read(100_000), b""))
    return out, reader


@pytest.mark.parametrize("size", [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 5])
def test_round_trip_and_plaintext_digest(size):
    data = payload(size, seed=40)
    ciphertext, reader = _encrypt(data)
    segments = max(1, -(-size // SEGMENT_SIZE))
    assert len(ciphertext) == HEADER_LEN + size + segments * TAG_LEN
    assert reader.plaintext_sha256 == hashlib.sha256(data).hexdigest() and reader.plaintext_size == size
    pieces = [ciphertext[i : i + 77_777] for i in range(0, len(ciphertext), 77_777)]
    assert b"".join(decrypt_stream(pieces, reader.content_key, expected_sha256=reader.plaintext_sha256)) == data


def test_fresh_key_and_nonce_each_time():
    data = payload(1000, seed=41)
    (c1, r1), (c2, r2) = _encrypt(data), _encrypt(data)
    assert r1.content_key != r2.content_key and c1 != c2 and data not in c1


def test_digest_unknown_before_the_end():
    reader = EncryptingReader(io.BytesIO(b"abc"))
    with pytest.raises(ContentError, match="read to the end"):
        _ = reader.plaintext_sha256


def test_tampered_ciphertext_is_refused():
    ciphertext, reader = _encrypt(payload(2 * SEGMENT_SIZE + 10, seed=42))
    bad = bytearray(ciphertext)
    bad[HEADER_LEN + SEGMENT_SIZE + 50] ^= 1
    stream = decrypt_stream([bytes(bad)], reader.content_key)
    assert next(stream)  # the first, intact segment is released ...
    with pytest.raises(IntegrityError, match="segment 1 failed authentication"):
        next(stream)  # ... the altered one never is


@pytest.mark.parametrize("cut", ["last segment", "one byte", "to a segment boundary"])
def test_truncated_ciphertext_is_refused(cut):
    ciphertext, reader = _encrypt(payload(2 * SEGMENT_SIZE + 10, seed=43))
    end = {"last segment": HEADER_LEN + 2 * (SEGMENT_SIZE + TAG_LEN), "one byte": len(ciphertext) - 1,
           "to a segment boundary": HEADER_LEN + SEGMENT_SIZE + TAG_LEN}[cut]
    with pytest.raises(IntegrityError):
        b"".join(decrypt_stream([ciphertext[:end]], reader.content_key))


def test_swapped_segments_are_refused():
    ciphertext, reader = _encrypt(payload(3 * SEGMENT_SIZE, seed=44))
    seg = SEGMENT_SIZE + TAG_LEN
    body = ciphertext[HEADER_LEN:]
    swapped = ciphertext[:HEADER_LEN] + body[seg : 2 * seg] + body[:seg] + body[2 * seg :]
    with pytest.raises(IntegrityError):
        b"".join(decrypt_stream([swapped], reader.content_key))


def test_wrong_content_key_and_wrong_digest_are_refused():
    ciphertext, reader = _encrypt(b"secret grid data")
    with pytest.raises(IntegrityError, match="wrong content key"):
        b"".join(decrypt_stream([ciphertext], bytes(32)))
    with pytest.raises(IntegrityError, match="certified"):
        b"".join(decrypt_stream([ciphertext], reader.content_key, expected_sha256="ab" * 32))
    with pytest.raises(ContentError, match="bad header"):
        b"".join(decrypt_stream([b"plain text, not encrypted"], reader.content_key))


@pytest.mark.parametrize("form", ["compressed", "uncompressed", "ethereum-64", "hex"])
def test_key_wrapping_to_a_wallet_public_key(wallet, form):
    key = bytes(range(32))
    public = {
        "compressed": wallet.public_key.format(True),
        "uncompressed": wallet.public_key.format(False),
        "ethereum-64": wallet.public_key.format(False)[1:],
        "hex": "0x" + wallet.public_key.format(False)[1:].hex(),
    }[form]
    wrapped = wrap_key(key, public)
    assert key not in wrapped and unwrap_key(wrapped, wallet.secret) == key
    assert unwrap_key(wrapped, "0x" + wallet.secret.hex()) == key


def test_only_the_recipient_can_unwrap(wallet):
    wrapped = wrap_key(bytes(32), wallet.public_key.format(True))
    with pytest.raises(ContentError, match="not wrapped for this wallet"):
        unwrap_key(wrapped, PrivateKey().secret)
    with pytest.raises(ContentError, match="33, 64 or 65 bytes"):
        wrap_key(bytes(32), b"\x02" * 20)


@pytest.mark.parametrize("backend", ["embedded", "daemon"])
def test_encrypted_artifact_through_a_store(backend, store, rpc_store, wallet):
    target = store if backend == "embedded" else rpc_store
    data = payload(3 * MIB + 11, seed=45)
    put = put_encrypted(target, io.BytesIO(data))
    assert put.plaintext_sha256 == hashlib.sha256(data).hexdigest() and put.plaintext_size == len(data)
    assert put.stored.sha256 != put.plaintext_sha256 and target.has(put.stored.cid)
    wrapped = wrap_key(put.content_key, wallet.public_key.format(False)[1:])
    key = unwrap_key(wrapped, wallet.secret)
    out = b"".join(decrypt_stream(target.get_stream(put.stored.cid), key, expected_sha256=put.plaintext_sha256))
    assert out == data
