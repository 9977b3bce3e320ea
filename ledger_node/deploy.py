"""Deploy the GridMart contracts, or reuse them when the chain already has them.

The address book ``deployments/<chainId>.json`` is written atomically, once every
contract is deployed and wired; a crash half-way leaves the previous book intact and
the next run starts over. A book is reused only if every address still holds exactly
the code that was deployed there and the sources have not changed since.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from .chain import TxSender
from .compiler import CONTRACT_NAMES, compile_contracts
from .config import get_settings


@dataclass
class AddressBook:
    chain_id: int
    operator: str
    addresses: dict[str, str] = field(default_factory=dict)
    code_hashes: dict[str, str] = field(default_factory=dict)
    build_hashes: dict[str, str] = field(default_factory=dict)
    deployed_at_block: int = 0

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
    for name in CONTRACT_NAMES:
        address = book.addresses.get(name)
        if address is None or book.build_hashes.get(name) != _build_hash(name):
            return False
        if keccak(w3.eth.get_code(address)).hex() != book.code_hashes.get(name):
            return False
    return True


def deploy(w3: Web3, operator: LocalAccount, directory: Path | None = None, force: bool = False) -> tuple[AddressBook, bool]:
    """Deploy and wire all contracts with `operator` as admin; returns (book, reused)."""
    chain_id = w3.eth.chain_id
    existing = AddressBook.load(chain_id, directory)
    if not force and existing is not None and is_live(w3, existing):
        return existing, True

    compiled = compile_contracts()
    sender = TxSender(w3, operator)
    addresses: dict[str, str] = {}

    def create(name: str, *args: object) -> str:
        factory = w3.eth.contract(abi=compiled[name].abi, bytecode=compiled[name].bytecode)
        receipt = sender.send(factory.constructor(*args))
        addresses[name] = receipt["contractAddress"]
        return receipt["contractAddress"]

    start_block = w3.eth.block_number
    op = operator.address
    points = create("Points", op)
    members = create("MemberRegistry", op, points)
    products = create("ProductRegistry", op, members)
    licensing = create("Licensing", op, members, products, points, op)
    federated = create("FederatedRegistry", op, members, products, points)
    create("UsageAnchor", op)

    points_c = w3.eth.contract(address=points, abi=compiled["Points"].abi)
    registrar = points_c.functions.REGISTRAR_ROLE().call()
    mover = points_c.functions.MOVER_ROLE().call()
    sender.send(points_c.functions.grantRole(registrar, members))
    sender.send(points_c.functions.grantRole(mover, licensing))
    sender.send(points_c.functions.grantRole(mover, federated))
    licensing_c = w3.eth.contract(address=licensing, abi=compiled["Licensing"].abi)
    sender.send(licensing_c.functions.grantRole(licensing_c.functions.REDEEMER_ROLE().call(), op))

    book = AddressBook(
        chain_id=chain_id,
        operator=op,
        addresses=addresses,
        code_hashes={n: keccak(w3.eth.get_code(a)).hex() for n, a in addresses.items()},
        build_hashes={n: _build_hash(n) for n in addresses},
        deployed_at_block=start_block + 1,
    )
    book.save(directory)
    return book, False
