"""ContributionLedger on the FederatedRegistry contract, signing as the coordinator.

Tasks and joins arrive at the coordinator as requests signed by the owner's and the
partners' wallets; the coordinator attests them on chain (`openTaskFor`, `addPartner`),
records every round (the aggregated model's CID, each partner's sample count and
share), and, once the owner has certified the final model as a new version of the
task's tool product, finalises the task, which pays the reward pool out pro rata.
The chain's own rules (active members only, the owner's tool product only) surface
as errors.Refused with the reason.
"""
from __future__ import annotations

import logging
import threading
from typing import Sequence

from eth_utils import keccak

from fl_coordinator.errors import Refused
from ledger_node.content.cid import cid_to_bytes
from ledger_node.contracts import GridMart
from ledger_node.errors import ContractRevert

log = logging.getLogger("gridmart.fl.chain")

REFUSALS = {  # contract error -> (HTTP status, what the caller should know)
    "NotActiveMember": (403, "{0} is not an active member with the needed role on chain; "
                             "ask the operator to admit it (task owners must be publishers)"),
    "NotToolPublisher": (403, "product {0} is not a tool product published by {1}"),
    "WrongCertificate": (409, "certificate {1} is not a version of this task's tool product "
                              "(or not the owner's tool)"),
    "NoRounds": (409, "no round of task {0} is recorded yet"),
    "TaskClosed": (409, "task {0} is already finalised on chain"),
}


def spec_hash(task_id: str) -> bytes:
    """The on-chain spec hash of a coordinator task id (its 32-byte hex form, else keccak)."""
    raw = task_id.removeprefix("0x")
    return bytes.fromhex(raw) if len(raw) == 64 else keccak(text=task_id)


def _refusal(exc: ContractRevert) -> Exception:
    if exc.error_name in REFUSALS:
        status, text = REFUSALS[exc.error_name]
        return Refused(text.format(*exc.error_args), status)
    return exc


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

    def open_task(self, task_id: str, owner: str, product_id: int, certificate_cid: str) -> None:
        try:
            chain_id, _ = self.chain.federated.open_task_for(owner, spec_hash(task_id), product_id,
                                                             cid_to_bytes(certificate_cid))
        except ContractRevert as exc:
            raise _refusal(exc) from None
        with self._lock:
            self._ids[task_id] = chain_id

    def join(self, task_id: str, partner: str) -> None:
        try:
            self.chain.federated.add_partner(self.chain_task_id(task_id), partner)
        except ContractRevert as exc:
            if exc.error_name != "AlreadyJoined":
                raise _refusal(exc) from None

    def record_round(self, task_id: str, round_no: int, model_cid: str, partners: Sequence[str],
                     sample_counts: Sequence[int], shares_bps: Sequence[int]) -> None:
        chain_id = self.chain_task_id(task_id)
        if self.chain.federated.task(chain_id)["rounds"] >= round_no:
            return  # recorded before a crash or a lost receipt
        self.chain.federated.record_round(chain_id, round_no, cid_to_bytes(model_cid), list(partners),
                                          [int(n) for n in sample_counts], [int(b) for b in shares_bps])

    def finalize(self, task_id: str, certificate_id: int) -> dict[str, int]:
        chain_id = self.chain_task_id(task_id)
        federated = self.chain.federated
        try:
            receipt = federated.finalize(chain_id, certificate_id)
        except ContractRevert as exc:
            if exc.error_name == "TaskClosed" and federated.task(chain_id)["final_certificate"] == certificate_id:
                return self._paid(chain_id)  # finalised before a crash or a lost receipt: same answer
            raise _refusal(exc) from None
        paid = {e["partner"]: e["amount"] for e in federated.events(receipt, "RewardPaid")}
        log.info("task %s (chain id %s) finalised with certificate %s; paid %s",
                 task_id, chain_id, certificate_id, paid)
        return paid

    def _paid(self, chain_id: int) -> dict[str, int]:
        logs = self.chain.federated.contract.events.RewardPaid().get_logs(
            from_block=self.chain.book.deployed_at_block, argument_filters={"taskId": chain_id})
        return {e["args"]["partner"]: e["args"]["amount"] for e in logs}

    def view(self, task_id: str) -> dict:
        chain_id = self.chain_task_id(task_id)
        task = self.chain.federated.task(chain_id)
        return {"ledger": "chain", "contract": self.chain.federated.address, "chain_task_id": chain_id,
                "owner": task["owner"], "product_id": task["product_id"], "rounds_recorded": task["rounds"],
                "status": ["none", "open", "finalized"][task["status"]],
                "final_certificate": task["final_certificate"], "reward_pool": task["reward_pool"],
                "contributions_bps": self.chain.federated.contributions(chain_id)}
