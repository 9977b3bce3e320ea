"""Merkle trees over usage records, compatible with OpenZeppelin's MerkleProof.

A record is canonical JSON (sorted keys, no spaces); its leaf is
keccak256(keccak256(record)) (double hashing, as OpenZeppelin's StandardMerkleTree, so a
leaf can never be mistaken for an inner node). Inner nodes hash the sorted pair.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak as _keccak


def keccak(data: bytes) -> bytes:
    """keccak256 (pycryptodome directly: a batch hashes ~3 times per record)."""
    return _keccak.new(digest_bits=256, data=data).digest()


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def leaf_hash(record: dict[str, Any] | bytes) -> bytes:
    data = record if isinstance(record, bytes) else canonical(record)
    return keccak(keccak(data))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass
class MerkleTree:
    """A tree over leaves in the given order; an odd node is carried up unchanged."""

    levels: list[list[bytes]]

    @classmethod
    def from_leaves(cls, leaves: list[bytes]) -> "MerkleTree":
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        levels = [list(leaves)]
        while len(levels[-1]) > 1:
            cur = levels[-1]
            nxt = [_pair(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
            if len(cur) % 2:
                nxt.append(cur[-1])
            levels.append(nxt)
        return cls(levels)

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> "MerkleTree":
        return cls.from_leaves([leaf_hash(r) for r in records])

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf `index` up to the root."""
        if not 0 <= index < len(self.levels[0]):
            raise IndexError(f"leaf {index} out of range (tree has {len(self.levels[0])} leaves)")
        out = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                out.append(level[sibling])
            index //= 2
        return out


def verify(proof: list[bytes], root: bytes, leaf: bytes) -> bool:
    """Off-chain twin of MerkleProof.verify."""
    node = leaf
    for sibling in proof:
        node = _pair(node, sibling)
    return node == root
