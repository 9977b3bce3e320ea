"""Wallets: scrypt-encrypted JSON keystores (Web3 Secret Storage) under <home>/keystores (0700, files 0600)."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from .config import get_settings, secure_home
from .errors import WalletError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class WalletInfo:
    name: str
    address: str
    path: Path


def keystore_dir() -> Path:
    return get_settings().home / "keystores"


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise WalletError(f"invalid wallet name {name!r}: use letters, digits, '.', '_' or '-'")
    return keystore_dir() / f"{name}.json"


def create_wallet(name: str, password: str, private_key: bytes | None = None) -> WalletInfo:
    """Create a keystore `name` (a new random key unless `private_key` is given)."""
    path = _path(name)
    if path.exists():
        raise WalletError(f"wallet {name!r} already exists at {path}: choose another name")
    if not password:
        raise WalletError("an empty password is not allowed: pass --password or set GRIDMART_WALLET_PASSWORD")
    account = Account.from_key(private_key) if private_key else Account.create()
    keystore = Account.encrypt(account.key, password, kdf="scrypt")
    secure_home()
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keystore, fh)
    os.replace(tmp, path)
    return WalletInfo(name, account.address, path)


def list_wallets() -> list[WalletInfo]:
    out = []
    for path in sorted(keystore_dir().glob("*.json")):
        try:
            address = "0x" + json.loads(path.read_text())["address"]
        except (ValueError, KeyError):
            continue
        out.append(WalletInfo(path.stem, _checksum(address), path))
    return out


def _checksum(address: str) -> str:
    from web3 import Web3

    return Web3.to_checksum_address(address)


def load_wallet(name: str, password: str) -> LocalAccount:
    """Decrypt keystore `name`; a wrong password raises WalletError."""
    path = _path(name)
    if not path.exists():
        raise WalletError(f"no wallet named {name!r} in {keystore_dir()}: create it with `gridmart wallet new {name}`")
    try:
        key = Account.decrypt(json.loads(path.read_text()), password)
    except ValueError as exc:
        raise WalletError(f"wrong password for wallet {name!r}") from exc
    return Account.from_key(key)
