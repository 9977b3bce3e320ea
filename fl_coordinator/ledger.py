"""Where contribution shares are recorded: a small interface for the FederatedRegistry client.

The coordinator calls these methods at the matching protocol steps; ChainLedger
(fl_coordinator.chain_ledger) writes them to the FederatedRegistry contract.
InMemoryLedger keeps the same calls in a list, for a coordinator run without a
chain (and for tests of the protocol alone).

Every method may raise errors.Refused to turn the request down (e.g. the chain says
the caller is not an active member); the coordinator then changes nothing.
"""
from __future__ import annotations

import threading
from typing import Protocol, Sequence

from fl_coordinator.errors import Refused


class ContributionLedger(Protocol):
    def open_task(self, task_id: str, owner: str, product_id: int, certificate_cid: str) -> None:
        """A task exists: its owner, the tool product it trains a new version of (0 = chosen at
        finalisation), and its certificate (fl_coordinator.certificate: sha-256 = task_id, stored
        at `certificate_cid`), which names the initial model and public HE context."""

    def join(self, task_id: str, partner: str) -> None:
        """`partner` (checksum address) joined the task. Joining twice is not an error."""

    def record_round(self, task_id: str, round_no: int, model_cid: str, partners: Sequence[str],
                     sample_counts: Sequence[int], shares_bps: Sequence[int]) -> None:
        """One aggregated round: contributing partners, their sample counts and shares
        (basis points, summing to 10,000), and the CID of the aggregated (encrypted) model.
        Recording a round that is already recorded is not an error (the coordinator retries)."""

    def finalize(self, task_id: str, certificate_id: int) -> dict[str, int]:
        """Close the task with its final model, certified as `certificate_id`; pay the reward
        pool pro rata to the partners' shares over all rounds. Returns points paid per partner."""

    def view(self, task_id: str) -> dict:
        """What the ledger holds about the task (for GET /fl/tasks/{id}/ledger)."""


class InMemoryLedger:
    """Records ledger calls in order; `events` is what a chain would hold. No reward pool."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def _add(self, name: str, **fields) -> None:
        with self._lock:
            self.events.append((name, fields))

    def open_task(self, task_id, owner, product_id, certificate_cid):
        self._add("open_task", task_id=task_id, owner=owner, product_id=product_id,
                  certificate_cid=certificate_cid)

    def join(self, task_id, partner):
        self._add("join", task_id=task_id, partner=partner)

    def record_round(self, task_id, round_no, model_cid, partners, sample_counts, shares_bps):
        if any(n == "record_round" and f["task_id"] == task_id and f["round_no"] == round_no
               for n, f in self.events):
            return
        self._add("record_round", task_id=task_id, round_no=round_no, model_cid=model_cid,
                  partners=list(partners), sample_counts=list(sample_counts), shares_bps=list(shares_bps))

    def finalize(self, task_id, certificate_id):
        if certificate_id <= 0:
            raise Refused("certificate_id must be the certificate of the final model's version")
        self._add("finalize", task_id=task_id, certificate_id=certificate_id)
        return {}

    def view(self, task_id: str) -> dict:
        with self._lock:
            return {"ledger": "memory",
                    "events": [{"event": n, **f} for n, f in self.events if f["task_id"] == task_id]}
