"""Plaintext backend: the same interface with no encryption, for comparison only."""
from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np

from fl_coordinator.errors import HEError
from fl_coordinator.he.base import EncryptedVector, PublicKeyset, SecretKeyset, Update, load_update

PUBLIC = b"gridmart-plaintext-v1"


class PlainPublic(PublicKeyset):
    name = "plain"

    def __init__(self, public_bytes: bytes = PUBLIC):
        if public_bytes != PUBLIC:
            raise HEError("not a plaintext-backend context")

    @property
    def public_bytes(self) -> bytes:
        return PUBLIC

    def encrypt(self, values: np.ndarray) -> bytes:
        values = np.asarray(values, dtype="<f8").ravel()
        return EncryptedVector(self.name, self.fingerprint, int(values.size),
                               [values.tobytes()], {}).to_bytes()

    def _check_chunks(self, ev: EncryptedVector) -> None:
        if len(ev.chunks) != 1 or len(ev.chunks[0]) != 8 * ev.length:
            raise HEError(f"plaintext update must be one block of {ev.length} float64 values")

    def weighted_sum(self, updates: Sequence[Update], weights: Sequence[Fraction]) -> bytes:
        vecs = [np.frombuffer(load_update(u).chunks[0], dtype="<f8") for u in updates]
        total = sum(float(w) * v for w, v in zip(weights, vecs))
        return self.encrypt(total)


class PlainSecret(PlainPublic, SecretKeyset):
    def __init__(self, secret_bytes: bytes = PUBLIC):
        super().__init__(secret_bytes)

    @classmethod
    def generate(cls) -> "PlainSecret":
        return cls()

    @property
    def secret_bytes(self) -> bytes:
        return PUBLIC

    def public(self) -> PlainPublic:
        return PlainPublic()

    def decrypt(self, update: Update) -> np.ndarray:
        return np.frombuffer(load_update(update).chunks[0], dtype="<f8").copy()
