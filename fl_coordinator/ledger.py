"""Where contribution shares are recorded: a small interface for the FederatedRegistry client.

The coordinator calls these four methods at the matching protocol steps; the
chain-backed implementation lives in ledger_node (issue #3). InMemoryLedger
keeps the same calls in a list, for running without a chain and for tests.
"""
from __future__ import annotations

import threading
from typing import Protocol, Sequence


class ContributionLedger(Protocol):
    def open_task(self, task_id: str, owner: str, model_cid: str, context_cid: str,
                  rounds: int, min_partners: int) -> None:
        """A task exists: its owner, initial model and public HE context (CIDs)."""

    def join(self, task_id: str, partner: str) -> None:
        """`partner` (checksum address) joined the task."""

    def record_round(self, task_id: str, round_no: int, model_cid: str, partners: Sequence[str],
                     sample_counts: Sequence[int], shares_bps: Sequence[int]) -> None:
        """One aggregated round: contributing partners, their sample counts and shares
        (basis points, summing to 10,000), and the CID of the aggregated (encrypted) model."""

    def finalize(self, task_id: str, final_model_cid: str, task_shares_bps: dict[str, int]) -> None:
        """The last round is aggregated; shares for the reward pool over all rounds."""


class InMemoryLedger:
    """Records ledger calls in order; `events` is what a chain would hold."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def _add(self, name: str, **fields) -> None:
        with self._lock:
            self.events.append((name, fields))

    def open_task(self, task_id, owner, model_cid, context_cid, rounds, min_partners):
        self._add("open_task", task_id=task_id, owner=owner, model_cid=model_cid,
                  context_cid=context_cid, rounds=rounds, min_partners=min_partners)

    def join(self, task_id, partner):
        self._add("join", task_id=task_id, partner=partner)

    def record_round(self, task_id, round_no, model_cid, partners, sample_counts, shares_bps):
        self._add("record_round", task_id=task_id, round_no=round_no, model_cid=model_cid,
                  partners=list(partners), sample_counts=list(sample_counts), shares_bps=list(shares_bps))

    def finalize(self, task_id, final_model_cid, task_shares_bps):
        self._add("finalize", task_id=task_id, final_model_cid=final_model_cid,
                  task_shares_bps=dict(task_shares_bps))

    def for_task(self, task_id: str) -> list[dict]:
        with self._lock:
            return [{"event": n, **f} for n, f in self.events if f["task_id"] == task_id]
