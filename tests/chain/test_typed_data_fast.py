"""The fast EIP-712 path (ledger_node.typed_data: digest, sign, recover) against eth_account's
generic encoder, and its signature rule against the contracts' (OpenZeppelin ECDSA)."""
from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_node import typed_data
from ledger_node.contracts import Voucher

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEY = Account.create()
uint256 = st.integers(min_value=0, max_value=2**256 - 1)


def _reference(primary: str, message: dict, chain_id: int = 31337) -> tuple[bytes, bytes]:
    """(digest, signature) as eth_account computes them."""
    signable = encode_typed_data(full_message=typed_data.full_message(primary, message, chain_id, CONTRACT))
    signed = Account.sign_message(signable, KEY.key)
    return bytes(signed.message_hash), bytes(signed.signature)


@settings(max_examples=60, deadline=None)
@given(licence=uint256, nonce=uint256, deadline=uint256, purpose=st.binary(min_size=32, max_size=32),
       chain_id=st.integers(min_value=1, max_value=2**64))
def test_redeem_digest_signature_and_recovery_match_eth_account(licence, nonce, deadline, purpose, chain_id):
    message = {"licenceId": licence, "nonce": nonce, "deadline": deadline, "purpose": purpose}
    digest, signature = _reference("Redeem", message, chain_id)
    assert typed_data.digest("Redeem", message, chain_id, CONTRACT) == digest
    assert typed_data.sign(KEY.key, "Redeem", message, chain_id, CONTRACT) == signature  # RFC 6979, low s
    assert typed_data.recover("Redeem", message, signature, chain_id, CONTRACT) == KEY.address


def test_listing_with_dynamic_fields_still_uses_the_generic_encoder():
    message = {"kind": 1, "cid": os.urandom(36), "sha256": os.urandom(32), "metadataHash": os.urandom(32),
               "previous": 0, "nonce": 7, "deadline": 2**40}
    digest, signature = _reference("Listing", message)
    assert typed_data.digest("Listing", message, 31337, CONTRACT) == digest
    assert typed_data.recover("Listing", message, signature, 31337, CONTRACT) == KEY.address


def _voucher_signature() -> tuple[dict, bytes]:
    message = Voucher(5, 9, 2**40, b"download".ljust(32, b"\0")).message()
    return message, typed_data.sign(KEY.key, "Redeem", message, 31337, CONTRACT)


def test_recover_refuses_what_the_contract_refuses():
    message, good = _voucher_signature()
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    # the malleable twin (n - s, other v) recovers the same key, but OpenZeppelin refuses a high s
    twin = r + (typed_data.SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
    digest = typed_data.digest("Redeem", message, 31337, CONTRACT)
    assert Account._recover_hash(digest, signature=twin) == KEY.address  # eth_account would take it
    with pytest.raises(ValueError, match="non-canonical"):
        typed_data.recover("Redeem", message, twin, 31337, CONTRACT)
    for bad in (good[:64] + bytes((v - 27,)),  # v 0/1: ecrecover (and so the contract) refuses it
                good[:64] + b"\x1d",  # v 29
                bytes(32) + good[32:],  # r = 0
                good[:64], good + b"\0"):  # wrong lengths
        with pytest.raises(ValueError):
            typed_data.recover("Redeem", message, bad, 31337, CONTRACT)


def test_out_of_range_fields_are_refused():
    message, signature = _voucher_signature()
    for field, value in (("licenceId", -1), ("nonce", 2**256), ("purpose", b"short")):
        with pytest.raises(ValueError):
            typed_data.recover("Redeem", {**message, field: value}, signature, 31337, CONTRACT)


def test_a_signature_of_other_fields_recovers_another_address():
    message, signature = _voucher_signature()
    assert typed_data.recover("Redeem", {**message, "nonce": 10}, signature, 31337, CONTRACT) != KEY.address
    assert typed_data.recover("Redeem", message, signature, 1, CONTRACT) != KEY.address
