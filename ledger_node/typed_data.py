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

from coincurve import PrivateKey, PublicKey
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from ledger_node.merkle import keccak as _k256  # pycryptodome direct: eth_utils' wrapper adds ~2 µs a call

SPEC_PATH = Path(__file__).with_name("eip712_types.json")


@lru_cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def type_string(primary: str) -> str:
    """``Listing(uint8 kind,bytes cid,...)`` — the EIP-712 encodeType of a struct."""
    fields = spec()["types"][primary]
    return f"{primary}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


@lru_cache
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


# ------------------------------------------------------------------ the digest, fast
#
# Verifying a voucher is on the redemption hot path. eth_account builds the whole typed-data
# document and encodes it generically (~0.5 ms); a struct of static fields (Redeem: three
# uint256 and a bytes32) is simply 32-byte words, and the domain separator never changes for a
# (chain, contract): so the digest is two keccaks. `digest` is checked against eth_account's
# encoding by tests/chain/test_typed_data_fast.py.

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2  # OpenZeppelin's ECDSA refuses s above this (malleable signatures)


@lru_cache(maxsize=64)
def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    d = spec()["domain"]
    return keccak(
        keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
        + keccak(text=d["name"]) + keccak(text=d["version"]) + chain_id.to_bytes(32, "big")
        + bytes.fromhex(verifying_contract.removeprefix("0x").rjust(64, "0")))


@lru_cache
def _static_fields(primary: str) -> tuple[tuple[str, str], ...] | None:
    """(name, type) of each field if every one is a plain uintN or bytes32, else None."""
    fields = tuple((f["name"], f["type"]) for f in spec()["types"][primary])
    ok = all(t == "bytes32" or (t.startswith("uint") and t[4:].isdigit()) for _, t in fields)
    return fields if ok else None


def _word(value: Any, kind: str) -> bytes:
    if kind == "bytes32":
        if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
            raise ValueError("bytes32 field must be 32 bytes")
        return bytes(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << int(kind[4:]):
        raise ValueError(f"{kind} field out of range")
    return value.to_bytes(32, "big")


def digest(primary: str, message: dict[str, Any], chain_id: int, verifying_contract: str) -> bytes:
    """The EIP-712 digest (what the wallet signs and `_hashTypedDataV4` computes)."""
    fields = _static_fields(primary)
    if fields is None:  # dynamic fields (Listing's cid): the generic encoder
        signable = encode_typed_data(full_message=full_message(primary, message, chain_id, verifying_contract))
        return keccak(b"\x19" + signable.version + signable.header + signable.body)
    struct = _k256(type_hash(primary) + b"".join(_word(message[name], kind) for name, kind in fields))
    return _k256(b"\x19\x01" + domain_separator(chain_id, verifying_contract) + struct)


@lru_cache(maxsize=4096)
def _checksum(raw: bytes) -> str:
    return to_checksum_address(raw)


def recover_digest(digest_: bytes, signature: bytes) -> str:
    """The signer of a 32-byte digest, by the contracts' rule (OpenZeppelin ECDSA: 65 bytes,
    v 27 or 28, 0 < r < n, 0 < s <= n/2); ValueError for a signature the contracts would refuse."""
    if len(signature) != 65:
        raise ValueError("signature must be 65 bytes")
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= _HALF_N:
        raise ValueError("non-canonical signature (v must be 27/28, s in the lower half)")
    try:
        public = PublicKey.from_signature_and_message(signature[:64] + bytes((v - 27,)), digest_, hasher=None)
    except Exception as exc:  # noqa: BLE001 - coincurve raises a bare Exception for an unrecoverable one
        raise ValueError(f"unrecoverable signature ({exc})") from None
    return _checksum(_k256(public.format(compressed=False)[1:])[12:])


def sign(private_key: bytes | str, primary: str, message: dict[str, Any], chain_id: int,
         verifying_contract: str) -> bytes:
    """Sign typed data with a local key; returns the 65-byte signature (r, s, v = 27/28;
    RFC 6979 nonces and a low s, so the same bytes eth_account produces)."""
    key = private_key if isinstance(private_key, (bytes, bytearray)) else bytes.fromhex(str(private_key).removeprefix("0x"))
    rsv = PrivateKey(bytes(key)).sign_recoverable(digest(primary, message, chain_id, verifying_contract), hasher=None)
    return rsv[:64] + bytes((rsv[64] + 27,))


def recover(primary: str, message: dict[str, Any], signature: bytes, chain_id: int,
            verifying_contract: str) -> str:
    """The address that signed ``message`` (for off-chain checks), under the same rules the
    contracts apply; ValueError for a malformed or non-canonical signature."""
    return recover_digest(digest(primary, message, chain_id, verifying_contract), bytes(signature))


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
