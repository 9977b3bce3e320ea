"""Packed Paillier backend (exact alternative), BatchCrypt-style.

Each value is quantized to a `value_bits`-bit unsigned integer
q = round(x * 2^frac_bits) + 2^(value_bits-1) and many are packed into one
plaintext, slot j at bit offset j * slot_bits. The coordinator weights with
integers k_i (p_i = k_i / D, exact when the sample counts' denominator fits in
`weight_bits`, otherwise rounded to D = 2^weight_bits by largest remainder):
prod c_i^k_i mod n^2. Slots cannot overflow because sum k_i q_i < D * 2^value_bits
<= 2^(value_bits + weight_bits) = 2^slot_bits. Library: TNO's
tno.mpc.encryption_schemes.paillier (Apache-2.0, on gmpy2) for key generation, randomized
encryption and decryption of the packed integers; see docs/fl.md for the comparison.
"""
from __future__ import annotations

import json
import math
import warnings
from fractions import Fraction
from typing import Sequence

import gmpy2
import numpy as np
from tno.mpc.encryption_schemes.paillier import Paillier, PaillierCiphertext, PaillierPublicKey, PaillierSecretKey
from tno.mpc.encryption_schemes.templates import TooLittleRandomnessWarning

from fl_coordinator.errors import HEError
from fl_coordinator.he.base import EncryptedVector, PublicKeyset, SecretKeyset, Update, load_update
from fl_coordinator.shares import largest_remainder

# Each encryption draws its r^n mod n^2 when it is made, on purpose (a partner encrypts a few
# dozen ciphertexts a round; a precomputed pool would only move that work). The library warns
# about it when a scheme object is garbage-collected; that warning says nothing to our users.
warnings.filterwarnings("ignore", category=TooLittleRandomnessWarning)

KEY_BITS = 2048
VALUE_BITS = 32
FRAC_BITS = 24
WEIGHT_BITS = 24
SECRET_FIELDS = ("lambda", "mu")


def integer_weights(weights: Sequence[Fraction], weight_bits: int = WEIGHT_BITS) -> tuple[list[int], int]:
    """Integers k_i and denominator D with k_i / D == weights[i] (or nearest, summing to D)."""
    den = math.lcm(*(Fraction(w).denominator for w in weights))
    if den <= 2 ** weight_bits:
        return [int(Fraction(w) * den) for w in weights], den
    den = 2 ** weight_bits
    return largest_remainder([Fraction(w) for w in weights], den), den


class PaillierPublic(PublicKeyset):
    name = "paillier"

    def __init__(self, public_bytes: bytes):
        try:
            meta = json.loads(public_bytes)
            self.n = gmpy2.mpz(int(meta["n"], 16))
            self.value_bits, self.frac_bits, self.weight_bits = (
                int(meta["value_bits"]), int(meta["frac_bits"]), int(meta["weight_bits"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise HEError(f"not a packed-Paillier public key ({exc})") from None
        if any(k in meta for k in (*SECRET_FIELDS, "p", "q")):
            raise HEError("Paillier key includes secret material; upload the public key only")
        self._public = public_bytes
        self.nsquare = self.n * self.n
        self.slot_bits = self.value_bits + self.weight_bits
        self.slots = (int(self.n).bit_length() - 1) // self.slot_bits
        self.ct_bytes = (int(self.nsquare).bit_length() + 7) // 8
        self.scheme = Paillier(PaillierPublicKey(int(self.n), int(self.n) + 1), None, precision=0)
        self.max_abs = 2.0 ** (self.value_bits - self.frac_bits - 1)

    @property
    def public_bytes(self) -> bytes:
        return self._public

    def encrypt(self, values: np.ndarray) -> bytes:
        values = np.asarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(values)) or (values.size and np.abs(values).max() >= self.max_abs):
            raise HEError(f"values must be finite and below {self.max_abs:g} in magnitude "
                          "for packed Paillier")
        q = np.rint(values * 2.0 ** self.frac_bits).astype(np.int64) + (1 << (self.value_bits - 1))
        chunks = []
        for i in range(0, max(values.size, 1), self.slots):
            m = 0
            for j, v in enumerate(q[i:i + self.slots].tolist()):
                m |= int(v) << (j * self.slot_bits)
            c = self.scheme.encrypt(m).get_value()  # g^m r^n mod n^2, fresh r
            chunks.append(int(c).to_bytes(self.ct_bytes, "big"))
        return EncryptedVector(self.name, self.fingerprint, int(values.size), chunks,
                               {"denominator": 1}).to_bytes()

    def _check_chunks(self, ev: EncryptedVector) -> None:
        want = max(1, math.ceil(ev.length / self.slots))
        if len(ev.chunks) != want:
            raise HEError(f"update has {len(ev.chunks)} ciphertexts, {ev.length} values need {want}")
        for j, c in enumerate(ev.chunks):
            if len(c) != self.ct_bytes or not 0 < int.from_bytes(c, "big") < self.nsquare:
                raise HEError(f"ciphertext {j} is not an element of Z*_(n^2) for this task's key")
        if ev.extra.get("denominator", 1) != 1:
            raise HEError("update is already an aggregate; upload a fresh encryption")

    def weighted_sum(self, updates: Sequence[Update], weights: Sequence[Fraction]) -> bytes:
        evs = [load_update(u) for u in updates]
        ks, den = integer_weights(weights, self.weight_bits)
        chunks = []
        for j in range(len(evs[0].chunks)):
            acc = gmpy2.mpz(1)
            for ev, k in zip(evs, ks):
                if k:
                    acc = acc * gmpy2.powmod(gmpy2.mpz(int.from_bytes(ev.chunks[j], "big")), k,
                                             self.nsquare) % self.nsquare
            chunks.append(int(acc).to_bytes(self.ct_bytes, "big"))
        return EncryptedVector(self.name, self.fingerprint, evs[0].length, chunks,
                               {"denominator": den}).to_bytes()


class PaillierSecret(PaillierPublic, SecretKeyset):
    def __init__(self, secret_bytes: bytes):
        try:
            meta = json.loads(secret_bytes)
            lambda_, mu = (int(meta.pop(k), 16) for k in SECRET_FIELDS)
        except (ValueError, KeyError, TypeError) as exc:
            raise HEError(f"not a packed-Paillier secret key ({exc}); ask the task owner") from None
        self._secret = secret_bytes
        super().__init__(json.dumps(meta, sort_keys=True).encode())
        n = int(self.n)
        self.private = Paillier(PaillierPublicKey(n, n + 1), PaillierSecretKey(lambda_, mu, n), precision=0)

    @classmethod
    def generate(cls, key_bits: int = KEY_BITS) -> "PaillierSecret":
        pub, priv = Paillier.generate_key_material(key_bits)
        meta = {"n": format(int(pub.n), "x"), "value_bits": VALUE_BITS, "frac_bits": FRAC_BITS,
                "weight_bits": WEIGHT_BITS, "lambda": format(int(priv.lambda_), "x"), "mu": format(int(priv.mu), "x")}
        return cls(json.dumps(meta, sort_keys=True).encode())

    @property
    def secret_bytes(self) -> bytes:
        return self._secret

    def public(self) -> PaillierPublic:
        return PaillierPublic(self._public)

    def decrypt(self, update: Update) -> np.ndarray:
        ev = load_update(update)
        if ev.backend != self.name or ev.context != self.fingerprint:
            raise HEError("update was not encrypted under this Paillier key")
        den = int(ev.extra.get("denominator", 1))
        mask = (1 << self.slot_bits) - 1
        offset = den << (self.value_bits - 1)
        out = []
        for c in ev.chunks:
            m = int(self.private.decrypt(PaillierCiphertext(int.from_bytes(c, "big"), self.private)).value)
            for _ in range(self.slots):
                out.append((m & mask) - offset)
                m >>= self.slot_bits
        scale = den << self.frac_bits
        return np.array([v / scale for v in out[:ev.length]], dtype=np.float64)
