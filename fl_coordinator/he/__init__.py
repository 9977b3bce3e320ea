"""Homomorphic-encryption backends behind one interface (see base.py).

`generate(name)` is for the task owner; `load_public(name, bytes)` is all the
coordinator ever calls; `load_secret(blob)` is for partners that received the
key envelope.
"""
from __future__ import annotations

from fl_coordinator.errors import HEError
from fl_coordinator.he.base import EncryptedVector, PublicKeyset, SecretKeyset

BACKENDS = ("ckks", "paillier", "plain")


def _classes(name: str):
    if name == "ckks":
        from fl_coordinator.he.ckks import CkksPublic, CkksSecret
        return CkksPublic, CkksSecret
    if name == "paillier":
        from fl_coordinator.he.paillier import PaillierPublic, PaillierSecret
        return PaillierPublic, PaillierSecret
    if name == "plain":
        from fl_coordinator.he.plain import PlainPublic, PlainSecret
        return PlainPublic, PlainSecret
    raise HEError(f"unknown HE backend '{name}'; use one of {', '.join(BACKENDS)}")


def generate(name: str) -> SecretKeyset:
    """Create fresh keys (task owner only)."""
    return _classes(name)[1].generate()


def load_public(name: str, public_bytes: bytes, workers: int = 1) -> PublicKeyset:
    """Load public material; refuses anything carrying a secret key.

    `workers` > 1 lets CKKS split large aggregations across processes;
    Paillier and plaintext aggregate in one process.
    """
    extra = {"workers": workers} if name == "ckks" else {}
    return _classes(name)[0](public_bytes, **extra)


def dump_secret(keyset: SecretKeyset) -> bytes:
    """Serialize secret key material with its backend name (for the key envelope)."""
    return keyset.name.encode() + b"\0" + keyset.secret_bytes


def load_secret(blob: bytes) -> SecretKeyset:
    name, sep, body = blob.partition(b"\0")
    if not sep:
        raise HEError("key blob has no backend name; ask the task owner to re-send the key")
    return _classes(name.decode(errors="replace"))[1](body)


__all__ = ["BACKENDS", "EncryptedVector", "PublicKeyset", "SecretKeyset",
           "generate", "load_public", "dump_secret", "load_secret"]
