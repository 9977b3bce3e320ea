"""HE secret keys travel to partners sealed to their wallet key (ECIES, secp256k1).

The seed (Phong et al.) shares the HE key pair among trainees over AES; here
the task owner seals the secret-key blob to each joined partner's wallet public
key (eciespy: ephemeral ECDH + HKDF + AES-256-GCM). The coordinator only
relays the sealed envelopes and cannot open them.
"""
from __future__ import annotations

import coincurve
import ecies
from eth_account import Account
from eth_keys import keys as eth_keys
from eth_utils.exceptions import ValidationError

from fl_coordinator.errors import Refused


def wallet_public_key(private_key: str | bytes) -> str:
    """Hex (64-byte, uncompressed without prefix) public key of a wallet private key."""
    return Account.from_key(private_key)._key_obj.public_key.to_hex()


def address_of_public_key(public_key_hex: str) -> str:
    """Checksum address of a 64-byte public key; refuses malformed keys and points off the curve."""
    try:
        raw = bytes.fromhex(public_key_hex.removeprefix("0x"))
        raw = raw[1:] if len(raw) == 65 and raw[0] == 4 else raw
        coincurve.PublicKey(b"\x04" + raw)
        return eth_keys.PublicKey(raw).to_checksum_address()
    except (ValueError, TypeError, ValidationError) as exc:
        raise Refused(f"public key is not a 64-byte secp256k1 key ({exc})") from None


def seal(public_key_hex: str, secret: bytes) -> bytes:
    """Encrypt `secret` so only the holder of the wallet key can read it."""
    return ecies.encrypt(public_key_hex.removeprefix("0x"), secret)


def unseal(private_key: str | bytes, envelope: bytes) -> bytes:
    """Open an envelope sealed to this wallet."""
    key = Account.from_key(private_key).key
    try:
        return ecies.decrypt(key.hex(), envelope)
    except Exception as exc:  # eciespy raises ValueError / InvalidTag
        raise Refused(f"key envelope does not open with this wallet ({type(exc).__name__}); "
                      "ask the task owner to re-send it") from None
