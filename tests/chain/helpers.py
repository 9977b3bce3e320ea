"""Small helpers for chain tests: the node's clock and a signed listing."""
from __future__ import annotations

import hashlib
import os

from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger_node.contracts import GridMart, Kind, Listing


def chain_time(w3: Web3) -> int:
    return w3.eth.get_block("latest")["timestamp"]


def increase_time(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def make_listing(gm: GridMart, publisher: str, kind: Kind = Kind.DATA, previous: int = 0,
                 deadline_in: int = 3600, payload: bytes | None = None) -> Listing:
    payload = payload if payload is not None else os.urandom(32)
    return Listing(kind=kind, cid=b"\x01\x55\x12\x20" + hashlib.sha256(payload).digest(),
                   sha256=hashlib.sha256(payload).digest(), metadata_hash=hashlib.sha256(b"meta" + payload).digest(),
                   previous=previous, nonce=gm.products.nonce(publisher),
                   deadline=chain_time(gm.w3) + deadline_in)


def publish(operator_gm: GridMart, account: LocalAccount, kind: Kind = Kind.DATA, approve: bool = True,
            previous: int = 0) -> int:
    """Register a signed listing by `account` (submitted by the operator); optionally approve it."""
    listing = make_listing(operator_gm, account.address, kind=kind, previous=previous)
    cert_id, _ = operator_gm.products.register(listing, account.address, operator_gm.products.sign_listing(account, listing))
    if approve:
        operator_gm.products.approve(cert_id)
    return cert_id
