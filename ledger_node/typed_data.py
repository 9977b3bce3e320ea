"""The EIP-712 typed-data definitions, in one place.

``eip712_types.json`` is the single source: Python signing reads it here, the
contracts get their type strings from ``contracts/TypedData.sol`` (generated
from it by :func:`solidity_library`, kept in sync by a test), and the web
pages fetch it from the API.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

SPEC_PATH = Path(__file__).with_name("eip712_types.json")


@lru_cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def type_string(primary: str) -> str:
    """``Listing(uint8 kind,bytes cid,...)`` — the EIP-712 encodeType of a struct."""
    fields = spec()["types"][primary]
    return f"{primary}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


def type_hash(primary: str) -> bytes:
    return keccak(text=type_string(primary))


def full_message(primary: str, message: dict[str, Any], chain_id: int, verifying_contract: str) -> dict:
    """The complete typed-data document (as eth_signTypedData_v4 takes it)."""
    s = spec()
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            primary: s["types"][primary],
        },
        "primaryType": primary,
        "domain": {
            **s["domain"],
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
        "message": message,
    }


def sign(private_key: bytes | str, primary: str, message: dict[str, Any], chain_id: int,
         verifying_contract: str) -> bytes:
    """Sign typed data with a local key; returns the 65-byte signature."""
    signable = encode_typed_data(full_message=full_message(primary, message, chain_id, verifying_contract))
    return bytes(Account.sign_message(signable, private_key).signature)


def recover(primary: str, message: dict[str, Any], signature: bytes, chain_id: int,
            verifying_contract: str) -> str:
    """The address that signed ``message`` (for off-chain checks)."""
    signable = encode_typed_data(full_message=full_message(primary, message, chain_id, verifying_contract))
    return Account.recover_message(signable, signature=signature)


def solidity_library() -> str:
    """Source of contracts/TypedData.sol, generated from the JSON spec."""
    lines = [
        "// SPDX-License-Identifier: MIT",
        "// GENERATED from ledger_node/eip712_types.json by ledger_node.typed_data — do not edit.",
        "pragma solidity ^0.8.24;",
        "",
        "/// @title TypedData",
        "/// @notice EIP-712 names and type hashes shared by GridMart contracts, Python and the browser.",
        "library TypedData {",
        f'    string internal constant NAME = "{spec()["domain"]["name"]}";',
        f'    string internal constant VERSION = "{spec()["domain"]["version"]}";',
    ]
    for primary in spec()["types"]:
        const = "".join("_" + c if c.isupper() else c.upper() for c in primary).lstrip("_")
        lines.append(f"    bytes32 internal constant {const}_TYPEHASH =")
        lines.append(f'        keccak256("{type_string(primary)}");')
    lines.append("}")
    return "\n".join(lines) + "\n"
