"""ContributionLedger on the FederatedRegistry contract, signing as the coordinator.

Tasks and joins arrive at the coordinator as requests signed by the owner's and the
partners' wallets; the coordinator attests them on chain (`openTaskFor`, `addPartner`),
then records every round: the aggregated model's CID and each partner's sample count
and share. Paying the reward pool needs the final model certified as a new version of
the owner's tool product (signed by the owner), so the owner closes the task with
`FederatedRegistry.finalize(taskId, certificateId)` after publishing it.
"""
from __future__ import annotations

import logging
import threading
from typing import Sequence

from eth_utils import keccak

from ledger_node.content.cid import cid_to_bytes
from ledger_node.contracts import GridMart

log = logging.getLogger("gridmart.fl.chain")


def spec_hash(task_id: str) -> bytes:
    """The on-chain spec hash of a coordinator task id (its 32-byte hex form, else keccak)."""
    raw = task_id.removeprefix("0x")
    return bytes.fromhex(raw) if len(raw) == 64 else keccak(text=task_id)


class ChainLedger:
    def __init__(self, chain: GridMart):
        self.chain = chain
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def chain_task_id(self, task_id: str) -> int:
        """The FederatedRegistry id of coordinator task `task_id` (found by its spec hash)."""
        with self._lock:
            if task_id not in self._ids:
                logs = self.chain.federated.contract.events.TaskOpened().get_logs(
                    from_block=self.chain.book.deployed_at_block)
                wanted = spec_hash(task_id)
                match = [e["args"]["taskId"] for e in logs if e["args"]["specHash"] == wanted]
                if not match:
                    raise LookupError(f"task {task_id} was never opened on chain")
                self._ids[task_id] = match[0]
            return self._ids[task_id]

    def open_task(self, task_id: str, owner: str, model_cid: str, context_cid: str,
                  rounds: int, min_partners: int) -> None:
        chain_id, _ = self.chain.federated.open_task_for(owner, spec_hash(task_id))
        with self._lock:
            self._ids[task_id] = chain_id

    def join(self, task_id: str, partner: str) -> None:
        self.chain.federated.add_partner(self.chain_task_id(task_id), partner)

    def record_round(self, task_id: str, round_no: int, model_cid: str, partners: Sequence[str],
                     sample_counts: Sequence[int], shares_bps: Sequence[int]) -> None:
        self.chain.federated.record_round(self.chain_task_id(task_id), round_no, cid_to_bytes(model_cid),
                                          list(partners), [int(n) for n in sample_counts],
                                          [int(b) for b in shares_bps])

    def finalize(self, task_id: str, final_model_cid: str, task_shares_bps: dict[str, int]) -> None:
        log.info("task %s (chain id %s) trained; final model %s awaits the owner's certificate and finalize",
                 task_id, self.chain_task_id(task_id), final_model_cid)
