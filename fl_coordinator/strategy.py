"""The aggregation rule (Flower-style Strategy): one object, one job.

FedAvg with sample weights, eq. (3) of the seed: G = sum_i p_i * H(g_i),
p_i = n_i / sum n, computed on ciphertexts by whatever HE backend the task
uses. Weights are exact fractions so the Paillier backend can stay exact.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Sequence

from fl_coordinator.he.base import PublicKeyset, Update


class FedAvg:
    """Sample-weighted federated averaging of (encrypted) model vectors."""

    @staticmethod
    def weights(sample_counts: Sequence[int]) -> list[Fraction]:
        total = sum(sample_counts)
        if not sample_counts or total <= 0 or any(n <= 0 for n in sample_counts):
            raise ValueError("FedAvg needs at least one update with a positive sample count")
        return [Fraction(n, total) for n in sample_counts]

    def aggregate(self, keyset: PublicKeyset, updates: Sequence[Update],
                  sample_counts: Sequence[int]) -> bytes:
        return keyset.weighted_sum(updates, self.weights(sample_counts))
