"""Typed clients for the GridMart contracts.

Each client wraps one deployed contract: views return plain Python values or small
dataclasses, transactions go through a shared :class:`TxSender` and return receipts.
:class:`GridMart` bundles them for one signing account.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from . import typed_data
from .chain import TxSender, call
from .compiler import compile_contracts
from .deploy import AddressBook


class Role(IntFlag):
    PUBLISHER = 1
    SUBSCRIBER = 2
    AUDITOR = 4


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


class Kind(IntEnum):
    DATA = 0
    TOOL = 1
    APPLICATION = 2


class Status(IntEnum):
    NONE = 0
    PENDING = 1
    ON_SHELF = 2
    OFF_SHELF = 3


class ProposalStatus(IntEnum):
    """ConsortiumCouncil.OperationStatus: where an admin proposal stands."""

    NONE = 0
    PENDING = 1  # collecting approvals
    WAITING = 2  # scheduled on the timelock, delay not over
    READY = 3
    EXECUTED = 4
    CANCELLED = 5


class PlanKind(IntEnum):
    PER_USE = 0
    WEEK = 1
    MONTH = 2
    YEAR = 3


@dataclass(frozen=True)
class Member:
    identity_hash: bytes
    roles: Role
    status: MemberStatus
    admitted_at: int


@dataclass(frozen=True)
class Listing:
    """The EIP-712 `Listing` a publisher signs."""

    kind: Kind
    cid: bytes
    sha256: bytes
    metadata_hash: bytes
    previous: int
    nonce: int
    deadline: int

    def message(self) -> dict[str, Any]:
        return {"kind": int(self.kind), "cid": self.cid, "sha256": self.sha256, "metadataHash": self.metadata_hash,
                "previous": self.previous, "nonce": self.nonce, "deadline": self.deadline}

    def as_tuple(self) -> tuple:
        return (int(self.kind), self.cid, self.sha256, self.metadata_hash, self.previous, self.nonce, self.deadline)


@dataclass(frozen=True)
class Certificate:
    id: int
    publisher: str
    product_id: int
    previous: int
    version: int
    kind: Kind
    status: Status
    sha256: bytes


@dataclass(frozen=True)
class Voucher:
    """The EIP-712 `Redeem` a licence holder signs."""

    licence_id: int
    nonce: int
    deadline: int
    purpose: bytes

    def message(self) -> dict[str, Any]:
        return {"licenceId": self.licence_id, "nonce": self.nonce, "deadline": self.deadline, "purpose": self.purpose}

    def as_tuple(self) -> tuple:
        return (self.licence_id, self.nonce, self.deadline, self.purpose)


@dataclass(frozen=True)
class Licence:
    id: int
    holder: str
    product_id: int
    expires_at: int
    uses_left: int


class ContractClient:
    """One deployed contract plus the sender that signs its transactions."""

    name: str = ""

    def __init__(self, w3: Web3, address: str, sender: TxSender | None):
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=compile_contracts()[self.name].abi)
        self.sender = sender

    def _call(self, fn_name: str, *args: Any) -> Any:
        return call(getattr(self.contract.functions, fn_name)(*args))

    def _send(self, fn_name: str, *args: Any, gas: int | None = None) -> TxReceipt:
        if self.sender is None:
            raise RuntimeError(f"{self.name} client is read-only: connect it with an account")
        return self.sender.send(getattr(self.contract.functions, fn_name)(*args), gas=gas)

    def encode(self, fn_name: str, *args: Any) -> bytes:
        """Calldata of `fn_name(*args)` on this contract, e.g. for a council proposal."""
        return bytes.fromhex(getattr(self.contract.functions, fn_name)(*args)._encode_transaction_data()[2:])

    def has_role(self, role_name: str, account: str) -> bool:
        """Whether `account` holds the role named by the constant `role_name` (e.g. "DEFAULT_ADMIN_ROLE")."""
        return self._call("hasRole", self._call(role_name), account)

    def events(self, receipt: TxReceipt, event: str) -> list[dict]:
        """Decoded `event` logs of this contract in `receipt`."""
        logs = getattr(self.contract.events, event)().process_receipt(receipt, errors=DISCARD)
        return [dict(log["args"]) for log in logs if log["address"] == self.address]


class PointsClient(ContractClient):
    name = "Points"

    def balance_of(self, account: str) -> int:
        return self._call("balanceOf", account)

    def total_supply(self) -> int:
        return self._call("totalSupply")

    def admission_granted(self, account: str) -> bool:
        return self._call("admissionGranted", account)


class MemberRegistryClient(ContractClient):
    name = "MemberRegistry"

    def admit(self, wallet: str, name: str, identity_hash: bytes, roles: Role) -> TxReceipt:
        return self._send("admit", wallet, name, identity_hash, int(roles))

    def set_roles(self, wallet: str, roles: Role) -> TxReceipt:
        return self._send("setRoles", wallet, int(roles))

    def suspend(self, wallet: str, reason: str) -> TxReceipt:
        return self._send("suspend", wallet, reason)

    def reinstate(self, wallet: str) -> TxReceipt:
        return self._send("reinstate", wallet)

    def member(self, wallet: str) -> Member:
        identity, roles, status, admitted = self._call("memberOf", wallet)
        return Member(identity, Role(roles), MemberStatus(status), admitted)

    def is_active_with_role(self, wallet: str, role: Role) -> bool:
        return self._call("isActiveWithRole", wallet, int(role))


class ProductRegistryClient(ContractClient):
    name = "ProductRegistry"

    def nonce(self, publisher: str) -> int:
        return self._call("nonces", publisher)

    def sign_listing(self, account: LocalAccount, listing: Listing) -> bytes:
        return typed_data.sign(account.key, "Listing", listing.message(), self.w3.eth.chain_id, self.address)

    def register(self, listing: Listing, publisher: str, signature: bytes, gas: int | None = None) -> tuple[int, TxReceipt]:
        receipt = self._send("register", listing.as_tuple(), publisher, signature, gas=gas)
        return self.events(receipt, "CertificateRegistered")[0]["id"], receipt

    def approve(self, cert_id: int) -> TxReceipt:
        return self._send("approve", cert_id)

    def withdraw(self, cert_id: int) -> TxReceipt:
        return self._send("withdraw", cert_id)

    def certificate(self, cert_id: int) -> Certificate:
        c = self._call("certificate", cert_id)
        return Certificate(cert_id, c[0], c[1], c[2], c[3], Kind(c[4]), Status(c[5]), c[6])

    def latest_version(self, product_id: int) -> int:
        return self._call("latestVersion", product_id)

    def history(self, product_id: int) -> list[int]:
        return list(self._call("history", product_id))

    def count(self) -> int:
        return self._call("certificateCount")

    def registration(self, cert_id: int, from_block: int = 0) -> dict[str, Any]:
        """The `CertificateRegistered` event of `cert_id`: full CID, metadata hash, signature."""
        logs = self.contract.events.CertificateRegistered().get_logs(
            from_block=from_block, argument_filters={"id": cert_id})
        if not logs:
            raise LookupError(f"no certificate {cert_id} on chain")
        log = logs[0]
        args = dict(log["args"])
        listing = args.pop("listing")
        args["listing"] = Listing(Kind(listing["kind"]), listing["cid"], listing["sha256"], listing["metadataHash"],
                                  listing["previous"], listing["nonce"], listing["deadline"])
        args["block_number"] = log["blockNumber"]
        args["transaction_hash"] = log["transactionHash"].to_0x_hex()
        return args


class LicensingClient(ContractClient):
    name = "Licensing"

    def set_plan(self, product_id: int, kind: PlanKind, price: int, uses: int = 0) -> TxReceipt:
        return self._send("setPlan", product_id, int(kind), price, uses)

    def plan(self, product_id: int, kind: PlanKind) -> tuple[int, int]:
        return tuple(self._call("planOf", product_id, int(kind)))

    def fee_for(self, price: int) -> int:
        return self._call("feeFor", price)

    def purchase(self, product_id: int, kind: PlanKind, gas: int | None = None) -> tuple[int, TxReceipt]:
        receipt = self._send("purchase", product_id, int(kind), gas=gas)
        return self.events(receipt, "LicencePurchased")[0]["licenceId"], receipt

    def sign_voucher(self, account: LocalAccount, voucher: Voucher) -> bytes:
        return typed_data.sign(account.key, "Redeem", voucher.message(), self.w3.eth.chain_id, self.address)

    def redeem(self, voucher: Voucher, signature: bytes, gas: int | None = None) -> TxReceipt:
        return self._send("redeem", voucher.as_tuple(), signature, gas=gas)

    def nonce_used(self, holder: str, nonce: int) -> bool:
        return self._call("nonceUsed", holder, nonce)

    def is_authorized(self, holder: str, product_id: int) -> bool:
        return self._call("isAuthorized", holder, product_id)

    def licence(self, licence_id: int) -> Licence:
        holder, product_id, expires_at, uses_left = self._call("licence", licence_id)
        return Licence(licence_id, holder, product_id, expires_at, uses_left)

    def licence_id_of(self, product_id: int, holder: str) -> int:
        return self._call("licenceIdOf", product_id, holder)

    def revoke(self, licence_id: int, reason: str) -> TxReceipt:
        return self._send("revoke", licence_id, reason)

    def set_price_bounds(self, min_price: int, max_price: int) -> TxReceipt:
        return self._send("setPriceBounds", min_price, max_price)

    def price_bounds(self) -> tuple[int, int]:
        return self._call("minPrice"), self._call("maxPrice")


class FederatedRegistryClient(ContractClient):
    name = "FederatedRegistry"

    def open_task(self, product_id: int, reward_pool: int, spec_hash: bytes,
                  spec_cid: bytes = b"") -> tuple[int, TxReceipt]:
        receipt = self._send("openTask", product_id, reward_pool, spec_hash, spec_cid)
        return self.events(receipt, "TaskOpened")[0]["taskId"], receipt

    def open_task_for(self, owner: str, spec_hash: bytes, product_id: int = 0,
                      spec_cid: bytes = b"") -> tuple[int, TxReceipt]:
        """Coordinator: open a task on `owner`'s signed request, training a new version of the
        owner's tool product `product_id` (0: the product is fixed at finalisation). `spec_hash`
        and `spec_cid` name the task certificate (fl_coordinator.certificate)."""
        receipt = self._send("openTaskFor", owner, product_id, spec_hash, spec_cid)
        return self.events(receipt, "TaskOpened")[0]["taskId"], receipt

    def fund_task(self, task_id: int, amount: int) -> TxReceipt:
        return self._send("fundTask", task_id, amount)

    def join(self, task_id: int) -> TxReceipt:
        return self._send("join", task_id)

    def add_partner(self, task_id: int, partner: str) -> TxReceipt:
        """Coordinator: add a partner on its signed join request."""
        return self._send("addPartner", task_id, partner)

    def record_round(self, task_id: int, round_no: int, model_cid: bytes, partners: list[str],
                     sample_counts: list[int], shares_bps: list[int]) -> TxReceipt:
        return self._send("recordRound", task_id, round_no, model_cid, partners, sample_counts, shares_bps)

    def finalize(self, task_id: int, certificate_id: int) -> TxReceipt:
        return self._send("finalize", task_id, certificate_id)

    def task(self, task_id: int) -> dict[str, Any]:
        t = self._call("task", task_id)
        keys = ("owner", "product_id", "rounds", "status", "final_certificate", "reward_pool", "total_bps", "spec_hash")
        return dict(zip(keys, t))

    def contributions(self, task_id: int) -> dict[str, int]:
        partners, bps = self._call("contributions", task_id)
        return dict(zip(partners, bps))

    def round_model(self, task_id: int, round_no: int) -> bytes:
        return self._call("roundModel", task_id, round_no)


class UsageAnchorClient(ContractClient):
    name = "UsageAnchor"

    def anchor(self, root: bytes, count: int, from_time: int, to_time: int) -> tuple[int, TxReceipt]:
        receipt = self._send("anchor", root, count, from_time, to_time)
        return self.events(receipt, "BatchAnchored")[0]["batchId"], receipt

    def batch(self, batch_id: int) -> dict[str, Any]:
        root, count, from_time, to_time, anchored_at = self._call("batch", batch_id)
        return {"root": root, "count": count, "from_time": from_time, "to_time": to_time, "anchored_at": anchored_at}

    def verify(self, batch_id: int, leaf: bytes, proof: list[bytes]) -> bool:
        return self._call("verify", batch_id, leaf, proof)


class TimelockClient(ContractClient):
    """The timelock holding every contract's DEFAULT_ADMIN_ROLE (OpenZeppelin TimelockController)."""

    name = "GridMartTimelock"

    def min_delay(self) -> int:
        return self._call("getMinDelay")

    def ready_at(self, operation_id: bytes) -> int:
        """When the operation becomes executable (0 unknown or cancelled, 1 executed)."""
        return self._call("getTimestamp", operation_id)


class CouncilClient(ContractClient):
    """The M-of-N consortium council: the timelock's only proposer and canceller."""

    name = "ConsortiumCouncil"

    def propose(self, target: str, data: bytes, value: int = 0, salt: bytes = b"\0" * 32) -> tuple[bytes, TxReceipt]:
        receipt = self._send("propose", Web3.to_checksum_address(target), value, data, salt)
        return self.events(receipt, "Proposed")[0]["id"], receipt

    def approve(self, proposal_id: bytes) -> TxReceipt:
        return self._send("approve", proposal_id)

    def cancel(self, proposal_id: bytes) -> TxReceipt:
        return self._send("cancel", proposal_id)

    def execute(self, proposal_id: bytes) -> TxReceipt:
        return self._send("execute", proposal_id)

    def status(self, proposal_id: bytes) -> ProposalStatus:
        return ProposalStatus(self._call("state", proposal_id))

    def proposal(self, proposal_id: bytes) -> dict[str, Any]:
        (target, _state, value, salt, data), approvals = self._call("proposal", proposal_id)
        return {"target": target, "value": value, "salt": salt, "data": data, "approvals": approvals}

    def members(self) -> list[str]:
        return list(self._call("members"))

    def threshold(self) -> int:
        return self._call("threshold")

    def is_member(self, account: str) -> bool:
        return self._call("isMember", account)


class GridMart:
    """All GridMart contract clients, signing as `account` (or read-only without one)."""

    def __init__(self, w3: Web3, book: AddressBook, account: LocalAccount | None = None):
        self.w3 = w3
        self.book = book
        self.account = account
        sender = TxSender(w3, account) if account is not None else None
        self.sender = sender
        self.points = PointsClient(w3, book.addresses["Points"], sender)
        self.members = MemberRegistryClient(w3, book.addresses["MemberRegistry"], sender)
        self.products = ProductRegistryClient(w3, book.addresses["ProductRegistry"], sender)
        self.licensing = LicensingClient(w3, book.addresses["Licensing"], sender)
        self.federated = FederatedRegistryClient(w3, book.addresses["FederatedRegistry"], sender)
        self.usage = UsageAnchorClient(w3, book.addresses["UsageAnchor"], sender)
        self.timelock = TimelockClient(w3, book.addresses["GridMartTimelock"], sender)
        self.council = CouncilClient(w3, book.addresses["ConsortiumCouncil"], sender)

    def contracts(self) -> list[ContractClient]:
        """Every deployed contract's client: the six GridMart contracts, then the timelock and council."""
        return [self.points, self.members, self.products, self.licensing, self.federated, self.usage,
                self.timelock, self.council]

    def as_account(self, account: LocalAccount) -> "GridMart":
        """The same contracts, signing as another account."""
        return GridMart(self.w3, self.book, account)


def connect_gridmart(account: LocalAccount | None = None, url: str | None = None) -> GridMart:
    """Connect to the chain and its deployed GridMart (from the address book)."""
    from .chain import connect
    from .deploy import is_live
    from .errors import ConfigError

    w3 = connect(url)
    book = AddressBook.load(w3.eth.chain_id)
    if book is None or not is_live(w3, book):
        raise ConfigError(f"GridMart contracts are not deployed on chain {w3.eth.chain_id}: run `gridmart deploy`")
    return GridMart(w3, book, account)
