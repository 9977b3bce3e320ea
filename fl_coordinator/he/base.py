"""The HE backend interface and the ciphertext container every backend uses.

A backend has two key sets: the *public* one (what the coordinator holds:
encrypt, weighted sum, validation) and the *secret* one (task owner and joined
partners: additionally decrypt). An encrypted vector is framed as
magic | header JSON | chunks so the coordinator can check backend, context
fingerprint and shape without decrypting anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from fl_coordinator.errors import HEError

MAGIC = b"GMHE1"
Update = Union[bytes, bytearray, memoryview, str, os.PathLike, "EncryptedVector"]


def fingerprint(public_bytes: bytes) -> str:
    """Context id: first 16 bytes of the public material's sha-256, hex."""
    return hashlib.sha256(public_bytes).hexdigest()[:32]


@dataclass
class EncryptedVector:
    backend: str
    context: str
    length: int
    chunks: list[bytes]
    extra: dict
    #: the chunks as backend objects, when check() kept what it loaded (see CkksPublic)
    loaded: list | None = field(default=None, repr=False, compare=False)

    def to_bytes(self) -> bytes:
        head = json.dumps({"backend": self.backend, "context": self.context,
                           "length": self.length, "extra": self.extra}).encode()
        parts = [MAGIC, struct.pack(">I", len(head)), head, struct.pack(">I", len(self.chunks))]
        for c in self.chunks:
            parts += [struct.pack(">I", len(c)), c]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "EncryptedVector":
        mv = memoryview(data)
        try:
            if bytes(mv[:5]) != MAGIC:
                raise ValueError("bad magic")
            (hl,) = struct.unpack(">I", mv[5:9])
            head = json.loads(bytes(mv[9:9 + hl]))
            pos = 9 + hl
            (n,) = struct.unpack(">I", mv[pos:pos + 4])
            pos += 4
            chunks = []
            for _ in range(n):
                (cl,) = struct.unpack(">I", mv[pos:pos + 4])
                pos += 4
                if pos + cl > len(mv):
                    raise ValueError("truncated chunk")
                chunks.append(bytes(mv[pos:pos + cl]))
                pos += cl
            if pos != len(mv):
                raise ValueError("trailing bytes")
            return cls(str(head["backend"]), str(head["context"]), int(head["length"]),
                       chunks, dict(head.get("extra", {})))
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise HEError(f"update is not a GridMart encrypted vector ({exc}); "
                          "encrypt it with the task's HE backend") from None


def load_update(update: Update) -> EncryptedVector:
    """Parse an update given as bytes or as a path to a file holding them (or parsed already)."""
    if isinstance(update, EncryptedVector):
        return update
    if isinstance(update, (str, os.PathLike)):
        update = Path(update).read_bytes()
    return EncryptedVector.from_bytes(bytes(update))


class PublicKeyset(ABC):
    """What the coordinator may hold: no secret key, so it can never decrypt."""

    name: str

    @property
    @abstractmethod
    def public_bytes(self) -> bytes: ...

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_bytes)

    @abstractmethod
    def encrypt(self, values: np.ndarray) -> bytes: ...

    @abstractmethod
    def _check_chunks(self, ev: EncryptedVector) -> None:
        """Raise HEError if the chunks cannot hold exactly ev.length values."""

    @abstractmethod
    def weighted_sum(self, updates: Sequence[Update], weights: Sequence[Fraction]) -> bytes:
        """sum_i weights[i] * updates[i], computed on ciphertexts."""

    def check(self, update: Update, expected_length: int) -> EncryptedVector:
        """Validate backend, context and shape of an update; return it parsed."""
        ev = load_update(update)
        self._check_header(ev, expected_length)
        self._check_chunks(ev)
        return ev

    def _check_header(self, ev: EncryptedVector, expected_length: int) -> None:
        if ev.backend != self.name:
            raise HEError(f"update uses HE backend '{ev.backend}' but the task uses '{self.name}'")
        if ev.context != self.fingerprint:
            raise HEError(f"update was encrypted under HE context {ev.context[:12]}..., "
                          f"not this task's {self.fingerprint[:12]}...; fetch the task's key")
        if ev.length != expected_length:
            raise HEError(f"update has {ev.length} values but the model has {expected_length}; "
                          "train the task's architecture")


class SecretKeyset(PublicKeyset):
    """Held by the task owner and joined partners only."""

    @property
    @abstractmethod
    def secret_bytes(self) -> bytes: ...

    @abstractmethod
    def public(self) -> PublicKeyset: ...

    @abstractmethod
    def decrypt(self, update: Update) -> np.ndarray: ...
