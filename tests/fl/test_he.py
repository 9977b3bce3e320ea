"""HE backends: correct weighted sums, refusal of foreign/malformed input, no decryption without the secret."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given, settings, strategies as st

from fl_coordinator import he
from fl_coordinator.errors import HEError
from fl_coordinator.he import ckks
from fl_coordinator.he.paillier import integer_weights
from fl_coordinator.strategy import FedAvg

TOL = {"ckks": 1e-6, "paillier": 1e-6, "plain": 1e-12}


@pytest.fixture(scope="module")
def keys():
    return {name: he.generate(name) for name in he.BACKENDS}


@pytest.mark.parametrize("name", he.BACKENDS)
def test_weighted_sum_matches_fedavg(keys, name):
    rng = np.random.default_rng(0)
    n = 300 if name == "paillier" else 9000  # 9000 > 2 CKKS ciphertexts
    xs = [rng.normal(0, 2, n) for _ in range(3)]
    counts = [120, 4000, 7]
    sk = keys[name]
    pub = he.load_public(name, sk.public_bytes)
    updates = [sk.encrypt(x) for x in xs]
    for u in updates:
        pub.check(u, n)
    out = sk.decrypt(FedAvg().aggregate(pub, updates, FedAvg.weights(counts)))
    ref = sum(c * x for c, x in zip(counts, xs)) / sum(counts)
    assert out.shape == (n,)
    assert np.abs(out - ref).max() <= TOL[name]


@pytest.mark.parametrize("name", ["ckks", "paillier"])
def test_coordinator_side_refuses_secret_material(keys, name):
    with pytest.raises(HEError, match="secret"):
        he.load_public(name, keys[name].secret_bytes)


def test_public_ckks_context_cannot_decrypt(keys):
    sk = keys["ckks"]
    pub = he.load_public("ckks", sk.public_bytes)
    assert not pub.context.is_private()
    assert not hasattr(pub, "decrypt")
    agg = FedAvg().aggregate(pub, [sk.encrypt(np.ones(10))], FedAvg.weights([5]))
    chunk = he.EncryptedVector.from_bytes(agg).chunks[0]
    with pytest.raises(ValueError, match="secret"):
        ts.ckks_vector_from(pub.context, chunk).decrypt()
    assert np.allclose(sk.decrypt(agg), 1.0, atol=1e-7)


def test_public_paillier_key_has_no_primes(keys):
    pub = he.load_public("paillier", keys["paillier"].public_bytes)
    assert not hasattr(pub, "decrypt") and not hasattr(pub, "private")
    assert not any(f'"{k}"'.encode() in pub.public_bytes for k in ("lambda", "mu", "p", "q"))
    with pytest.raises(HEError, match="secret material"):
        he.load_public("paillier", keys["paillier"].secret_bytes)


@pytest.mark.parametrize("name", ["ckks", "paillier", "plain"])
def test_check_refuses_wrong_shape_context_and_garbage(keys, name):
    sk = keys[name]
    pub = he.load_public(name, sk.public_bytes)
    good = sk.encrypt(np.zeros(40))
    with pytest.raises(HEError, match="has 40 values but the model has 41"):
        pub.check(good, 41)
    with pytest.raises(HEError, match="not a GridMart encrypted vector"):
        pub.check(b"hello" + good[5:-3], 40)
    other_backend = "plain" if name != "plain" else "ckks"
    with pytest.raises(HEError, match="backend"):
        pub.check(keys[other_backend].encrypt(np.zeros(40)), 40)
    if name != "plain":
        foreign = he.generate(name).encrypt(np.zeros(40))
        with pytest.raises(HEError, match="context"):
            pub.check(foreign, 40)


def test_ckks_check_catches_lying_header(keys):
    sk = keys["ckks"]
    ev = he.EncryptedVector.from_bytes(sk.encrypt(np.zeros(10)))
    ev.length = 11  # header claims 11 values; the ciphertext holds 10
    with pytest.raises(HEError, match="holds 10 values"):
        he.load_public("ckks", sk.public_bytes).check(ev.to_bytes(), 11)


def test_ckks_parallel_aggregation_equals_serial(keys, tmp_path, monkeypatch):
    sk = keys["ckks"]
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=3 * ckks.SLOTS + 5) for _ in range(2)]
    paths = []
    for i, x in enumerate(xs):
        p = tmp_path / f"u{i}.bin"
        p.write_bytes(sk.encrypt(x))
        paths.append(p)
    monkeypatch.setattr(ckks, "PARALLEL_MIN_CHUNKS", 1)
    par = he.load_public("ckks", sk.public_bytes, workers=2)
    try:
        out_par = sk.decrypt(FedAvg().aggregate(par, paths, FedAvg.weights([1, 3])))
        assert par._pool is not None  # the split really ran in a second process
    finally:
        par.close()
    out_ser = sk.decrypt(FedAvg().aggregate(he.load_public("ckks", sk.public_bytes), paths, FedAvg.weights([1, 3])))
    ref = 0.25 * xs[0] + 0.75 * xs[1]
    assert np.abs(out_par - ref).max() < 1e-6
    assert np.abs(out_par - out_ser).max() < 1e-6


@pytest.mark.parametrize("name", he.BACKENDS)
def test_aggregating_checked_updates_equals_aggregating_the_spool(keys, name, tmp_path):
    """The coordinator aggregates the updates check() parsed on upload; after a restart it reads
    the spool files instead. Both must give the very same aggregate, however often it is run."""
    sk = keys[name]
    pub = he.load_public(name, sk.public_bytes)
    rng = np.random.default_rng(2)
    updates = [sk.encrypt(rng.normal(size=300)) for _ in range(3)]
    paths = []
    for i, u in enumerate(updates):
        paths.append(tmp_path / f"u{i}.bin")
        paths[-1].write_bytes(u)
    checked = [pub.check(u, 300) for u in updates]
    if name == "ckks":
        assert all(len(ev.loaded) == 1 for ev in checked)  # kept loaded: not parsed again
    from_spool = FedAvg().aggregate(pub, paths, FedAvg.weights([5, 1, 2]))
    assert FedAvg().aggregate(pub, checked, FedAvg.weights([5, 1, 2])) == from_spool
    assert FedAvg().aggregate(pub, checked, FedAvg.weights([5, 1, 2])) == from_spool  # the checked updates are unchanged


def test_ckks_check_keeps_only_small_updates_loaded(keys, monkeypatch):
    sk = keys["ckks"]
    pub = he.load_public("ckks", sk.public_bytes)
    monkeypatch.setattr(ckks, "KEEP_LOADED_MAX_CHUNKS", 2)
    assert len(pub.check(sk.encrypt(np.ones(2 * ckks.SLOTS)), 2 * ckks.SLOTS).loaded) == 2
    assert pub.check(sk.encrypt(np.ones(2 * ckks.SLOTS + 1)), 2 * ckks.SLOTS + 1).loaded is None


def test_key_blob_roundtrip(keys):
    for sk in keys.values():
        again = he.load_secret(he.dump_secret(sk))
        assert again.fingerprint == sk.fingerprint
        assert np.allclose(again.decrypt(sk.encrypt(np.arange(5.0))), np.arange(5.0), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 10 ** 7), min_size=1, max_size=12))
def test_paillier_integer_weights_are_exact_or_sum_to_denominator(counts):
    weights = FedAvg.weights(counts)
    ks, den = integer_weights(weights)
    assert sum(ks) == den
    if den == sum(counts) // np.gcd.reduce(counts):
        assert all(Fraction(k, den) == w for k, w in zip(ks, weights))
    assert all(abs(Fraction(k, den) - w) <= Fraction(1, den) for k, w in zip(ks, weights))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=80),
       st.lists(st.integers(1, 50_000), min_size=2, max_size=2))
def test_paillier_packing_roundtrip_property(keys, values, counts):
    sk = keys["paillier"]
    x = np.array(values)
    y = -x[::-1].copy()
    out = sk.decrypt(FedAvg().aggregate(sk.public(), [sk.encrypt(x), sk.encrypt(y)], FedAvg.weights(counts)))
    ref = (counts[0] * x + counts[1] * y) / sum(counts)
    assert np.abs(out - ref).max() <= 2 ** -24


def test_out_of_range_values_refused(keys):
    with pytest.raises(HEError, match="magnitude"):
        keys["paillier"].encrypt(np.array([200.0]))
    with pytest.raises(HEError, match="finite"):
        keys["ckks"].encrypt(np.array([np.nan]))


def test_ckks_fingerprint_is_the_hash_of_the_public_context(keys):
    sk = keys["ckks"]
    pub = he.load_public("ckks", sk.public_bytes)
    assert pub.fingerprint == sk.fingerprint == he.base.fingerprint(sk.public_bytes)


def test_ckks_keys_are_symmetric_and_each_has_its_own_fingerprint(keys):
    """Only secret holders encrypt (secret-key encryption is ~2x cheaper); the public material is
    the parameters plus a key id, so two tasks' contexts still differ."""
    sk, other = keys["ckks"], he.generate("ckks")
    pub = he.load_public("ckks", sk.public_bytes)
    with pytest.raises(HEError, match="symmetric: only holders of the secret key can encrypt"):
        pub.encrypt(np.ones(3))
    assert sk.public_bytes.startswith(ckks.SYMMETRIC_MAGIC) and len(sk.public_bytes) < 1024
    assert other.fingerprint != sk.fingerprint
    with pytest.raises(HEError, match="context"):
        pub.check(other.encrypt(np.ones(3)), 3)


def test_asymmetric_ckks_keys_made_before_still_work():
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, ckks.POLY_MODULUS, coeff_mod_bit_sizes=ckks.COEFF_MOD_BITS)
    ctx.global_scale = 2.0 ** ckks.SCALE_BITS
    sk = he.load_secret(he.dump_secret(ckks.CkksSecret(ctx.serialize(save_secret_key=True))))
    pub = he.load_public("ckks", sk.public_bytes)
    assert not sk.public_bytes.startswith(ckks.SYMMETRIC_MAGIC)
    agg = FedAvg().aggregate(pub, [pub.encrypt(np.full(5, 2.0)), sk.encrypt(np.full(5, 4.0))], FedAvg.weights([1, 3]))
    assert np.abs(sk.decrypt(agg) - 3.5).max() < 1e-7


def test_ckks_chunk_reader_reads_only_the_range(keys, tmp_path):
    sk = keys["ckks"]
    path = tmp_path / "u.bin"
    path.write_bytes(sk.encrypt(np.arange(3 * ckks.SLOTS + 7.0)))
    ev = he.EncryptedVector.from_bytes(path.read_bytes())
    assert ckks._read_chunks(str(path), 1, 3) == (ev.length, 4, ev.chunks[1:3])
    assert ckks._read_chunks(str(path), 0, 0) == (ev.length, 4, [])
    assert ckks._read_chunks(str(path), 2, 99)[2] == ev.chunks[2:]
