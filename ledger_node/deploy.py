"""Deploy the GridMart contracts, or reuse them when the chain already has them.

The address book ``deployments/<chainId>.json`` is written atomically, once every
contract is deployed and wired; a crash half-way leaves the previous book intact and
the next run starts over. A book is reused only if every address still holds exactly
the code that was deployed there and the sources have not changed since.

Powers are split at deployment (docs/chain.md): the deploying key is the service's
operator key and keeps only its day-to-day roles; DEFAULT_ADMIN_ROLE of every contract
goes to a TimelockController whose only proposer is an M-of-N ConsortiumCouncil, and the
deployer renounces every admin role it held.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from .chain import TxSender
from .compiler import CONTRACT_NAMES, compile_contracts
from .config import get_settings
from .errors import ConfigError
from .wallets import create_wallet, list_wallets

#: governance contracts, deployed after CONTRACT_NAMES
GOVERNANCE_NAMES = ("GridMartTimelock", "ConsortiumCouncil")
DEVNET_CHAIN_ID = 31337
#: the devnet's council: keystores council-1..3 (devnet password), 2 of 3, one day's delay
DEVNET_PASSWORD = "gridmart-dev"
DEVNET_COUNCIL = ("council-1", "council-2", "council-3")
DEVNET_THRESHOLD = 2
DEFAULT_ADMIN_DELAY = 86_400
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass
class AddressBook:
    chain_id: int
    operator: str
    addresses: dict[str, str] = field(default_factory=dict)
    code_hashes: dict[str, str] = field(default_factory=dict)
    build_hashes: dict[str, str] = field(default_factory=dict)
    deployed_at_block: int = 0
    council: list[str] = field(default_factory=list)  # members at deployment (the chain has the current set)
    council_threshold: int = 0
    admin_delay: int = 0

    @staticmethod
    def path_for(chain_id: int, directory: Path | None = None) -> Path:
        return (directory or get_settings().deployments_dir) / f"{chain_id}.json"

    @classmethod
    def load(cls, chain_id: int, directory: Path | None = None) -> "AddressBook | None":
        path = cls.path_for(chain_id, directory)
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))

    def save(self, directory: Path | None = None) -> Path:
        path = self.path_for(self.chain_id, directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)
        return path


def _build_hash(name: str) -> str:
    return keccak(hexstr=compile_contracts()[name].bytecode).hex()


def is_live(w3: Web3, book: AddressBook) -> bool:
    """True if every contract of `book` is on chain, unchanged, and built from current sources."""
    for name in CONTRACT_NAMES + GOVERNANCE_NAMES:
        address = book.addresses.get(name)
        if address is None or book.build_hashes.get(name) != _build_hash(name):
            return False
        if keccak(w3.eth.get_code(address)).hex() != book.code_hashes.get(name):
            return False
    return True


@dataclass(frozen=True)
class Council:
    """Who approves admin actions: members' addresses, approvals needed, timelock delay (s)."""

    members: tuple[str, ...]
    threshold: int
    delay: int

    def __post_init__(self) -> None:
        if not self.members:
            raise ConfigError("the admin council needs at least one member: set GRIDMART_COUNCIL=0xaddr,0xaddr,...")
        if len({m.lower() for m in self.members}) != len(self.members):
            raise ConfigError("GRIDMART_COUNCIL lists a member twice: list each member's address once")
        if not 1 <= self.threshold <= len(self.members):
            raise ConfigError(f"council threshold {self.threshold} must be between 1 and {len(self.members)} "
                              "(the number of members): fix GRIDMART_COUNCIL_THRESHOLD")
        if self.delay < 0:
            raise ConfigError(f"admin delay {self.delay} s is negative: set GRIDMART_ADMIN_DELAY_SECONDS >= 0")


def council_from_env(chain_id: int) -> Council:
    """The council from GRIDMART_COUNCIL(_THRESHOLD) and GRIDMART_ADMIN_DELAY_SECONDS; on the devnet,
    when unset, three keystores council-1..3 (created with the devnet password), 2 of 3."""
    delay = _int_env("GRIDMART_ADMIN_DELAY_SECONDS", DEFAULT_ADMIN_DELAY)
    raw = os.environ.get("GRIDMART_COUNCIL", "").strip()
    if raw:
        members = []
        for item in raw.split(","):
            if not Web3.is_address(item.strip()):
                raise ConfigError(f"GRIDMART_COUNCIL: {item.strip()!r} is not an address: list 0x addresses separated by commas")
            members.append(Web3.to_checksum_address(item.strip()))
        return Council(tuple(members), _int_env("GRIDMART_COUNCIL_THRESHOLD", len(members) // 2 + 1), delay)
    if chain_id != DEVNET_CHAIN_ID:
        raise ConfigError(f"chain {chain_id} is not the devnet: set GRIDMART_COUNCIL=0xaddr,... (the consortium "
                          "members who approve admin actions), GRIDMART_COUNCIL_THRESHOLD and GRIDMART_ADMIN_DELAY_SECONDS")
    existing = {w.name: w.address for w in list_wallets()}
    members = tuple(existing.get(name) or create_wallet(name, DEVNET_PASSWORD).address for name in DEVNET_COUNCIL)
    return Council(members, _int_env("GRIDMART_COUNCIL_THRESHOLD", DEVNET_THRESHOLD), delay)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def deploy(w3: Web3, operator: LocalAccount, directory: Path | None = None, force: bool = False,
           council: Sequence[str] | None = None, threshold: int | None = None,
           delay: int | None = None) -> tuple[AddressBook, bool]:
    """Deploy and wire all contracts; returns (book, reused).

    `operator` (the service's key) deploys and keeps only its day-to-day roles; admin goes to
    a timelock (`delay` seconds) driven by `council` (addresses, `threshold` of them approve).
    Without `council`, the settings come from the environment (`council_from_env`).
    """
    chain_id = w3.eth.chain_id
    existing = AddressBook.load(chain_id, directory)
    if not force and existing is not None and is_live(w3, existing):
        return existing, True
    if council is None:
        gov = council_from_env(chain_id)
        gov = Council(gov.members, gov.threshold if threshold is None else threshold, gov.delay if delay is None else delay)
    else:
        members = tuple(Web3.to_checksum_address(m) for m in council)
        gov = Council(members, len(members) // 2 + 1 if threshold is None else threshold,
                      DEFAULT_ADMIN_DELAY if delay is None else delay)
    if operator.address in gov.members:
        raise ConfigError(f"the operator {operator.address} is a council member: the service's key must hold no admin "
                          "power, so choose other council members")

    compiled = compile_contracts()
    sender = TxSender(w3, operator)
    addresses: dict[str, str] = {}

    def create(name: str, *args: object) -> str:
        factory = w3.eth.contract(abi=compiled[name].abi, bytecode=compiled[name].bytecode)
        receipt = sender.send(factory.constructor(*args))
        addresses[name] = receipt["contractAddress"]
        return receipt["contractAddress"]

    def at(name: str):
        return w3.eth.contract(address=addresses[name], abi=compiled[name].abi)

    start_block = w3.eth.block_number
    op = operator.address
    points = create("Points", op)
    members = create("MemberRegistry", op, points)
    products = create("ProductRegistry", op, members)
    licensing = create("Licensing", op, members, products, points, op)
    federated = create("FederatedRegistry", op, members, products, points)
    create("UsageAnchor", op)

    points_c = at("Points")
    registrar = points_c.functions.REGISTRAR_ROLE().call()
    mover = points_c.functions.MOVER_ROLE().call()
    sender.send(points_c.functions.grantRole(registrar, members))
    sender.send(points_c.functions.grantRole(mover, licensing))
    sender.send(points_c.functions.grantRole(mover, federated))
    licensing_c = at("Licensing")
    sender.send(licensing_c.functions.grantRole(licensing_c.functions.REDEEMER_ROLE().call(), op))

    # admin: a timelock whose only proposer/canceller is the council; anyone executes when ready
    timelock = create("GridMartTimelock", gov.delay, [], [ZERO_ADDRESS], op)
    council_addr = create("ConsortiumCouncil", timelock, list(gov.members), gov.threshold)
    timelock_c = at("GridMartTimelock")
    for role in (timelock_c.functions.PROPOSER_ROLE().call(), timelock_c.functions.CANCELLER_ROLE().call()):
        sender.send(timelock_c.functions.grantRole(role, council_addr))
    admin = timelock_c.functions.DEFAULT_ADMIN_ROLE().call()
    for name in CONTRACT_NAMES:
        sender.send(at(name).functions.grantRole(admin, timelock))
    for name in CONTRACT_NAMES + ("GridMartTimelock",):
        sender.send(at(name).functions.renounceRole(admin, op))
    holders = [name for name in CONTRACT_NAMES + ("GridMartTimelock",) if at(name).functions.hasRole(admin, op).call()]
    if holders:
        raise ConfigError(f"deployment left the operator admin of {', '.join(holders)}: not saving the address book")

    book = AddressBook(
        chain_id=chain_id,
        operator=op,
        addresses=addresses,
        code_hashes={n: keccak(w3.eth.get_code(a)).hex() for n, a in addresses.items()},
        build_hashes={n: _build_hash(n) for n in addresses},
        deployed_at_block=start_block + 1,
        council=list(gov.members),
        council_threshold=gov.threshold,
        admin_delay=gov.delay,
    )
    book.save(directory)
    return book, False
