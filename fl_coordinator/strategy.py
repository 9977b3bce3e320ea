"""The rule of a round (Flower-style Strategy): what partners train with, how much each
update weighs, and how the updates become the next model; one object per task.

The task certificate records the strategy's terms (``terms()``), so the coordinator and
every partner rebuild the same object from it (``from_terms``): the partner asks
``configure_round`` what to train with, the coordinator takes ``weights`` once per round and
uses them both to aggregate (on ciphertexts, by whatever HE backend the task uses: eq. (3)
of the seed, G = sum_i p_i * H(g_i)) and to split the round's contribution shares.
Weights are exact fractions so the Paillier backend can stay exact.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar, Sequence

from fl_coordinator.errors import FLError
from fl_coordinator.he.base import PublicKeyset, Update

#: the partner model's training parameters a task certifies (FedMLPClassifier's names)
TRAINING_KEYS = ("lr", "epochs", "batch_size", "l2", "class_weight", "dp_clip", "dp_noise")


class FedAvg:
    """Sample-weighted federated averaging (McMahan et al., 2017)."""

    name: ClassVar[str] = "fedavg"
    #: the strategy's own terms besides TRAINING_KEYS
    params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **training: Any):
        unknown = sorted(set(training) - set(TRAINING_KEYS))
        if unknown:
            raise FLError(f"unknown training parameter(s) {unknown}; known: {list(TRAINING_KEYS)}")
        self.training = dict(training)

    def terms(self) -> dict:
        """What the task certificate records: enough for ``from_terms`` to rebuild this object."""
        return {"strategy": self.name, **self.training}

    def configure_round(self, round_number: int) -> dict:
        """The model parameters a partner trains round `round_number` with."""
        return dict(self.training)

    @staticmethod
    def weights(sample_counts: Sequence[int]) -> list[Fraction]:
        total = sum(sample_counts)
        if not sample_counts or total <= 0 or any(n <= 0 for n in sample_counts):
            raise ValueError("FedAvg needs at least one update with a positive sample count")
        return [Fraction(n, total) for n in sample_counts]

    def aggregate(self, keyset: PublicKeyset, updates: Sequence[Update], weights: Sequence[Fraction]) -> bytes:
        """sum_i weights_i * update_i, on whatever the keyset encrypts."""
        return keyset.weighted_sum(updates, weights)


class FedProx(FedAvg):
    """FedAvg whose partners add mu/2 * ||w - w_global||^2 to their local loss (Li et al.,
    2020): on non-IID data a partner's model drifts less far from the others'."""

    name: ClassVar[str] = "fedprox"
    params: ClassVar[tuple[str, ...]] = ("prox_mu",)

    def __init__(self, prox_mu: float = 0.01, **training: Any):
        super().__init__(**training)
        if not 0 < float(prox_mu) < 10:
            raise FLError(f"FedProx needs 0 < prox_mu < 10 (got {prox_mu})")
        self.prox_mu = float(prox_mu)

    def terms(self) -> dict:
        return {**super().terms(), "prox_mu": self.prox_mu}

    def configure_round(self, round_number: int) -> dict:
        return {**super().configure_round(round_number), "prox_mu": self.prox_mu}


STRATEGIES: dict[str, type[FedAvg]] = {cls.name: cls for cls in (FedAvg, FedProx)}


def from_terms(training: dict) -> FedAvg:
    """The strategy a task's certified training terms describe (no "strategy": FedAvg, as
    tasks made before strategies were named; other keys are not the strategy's)."""
    name = training.get("strategy", FedAvg.name)
    if name not in STRATEGIES:
        raise FLError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    cls = STRATEGIES[name]
    return cls(**{k: training[k] for k in (*TRAINING_KEYS, *cls.params) if k in training})
