"""Compile contracts/ offline with py-solc-x driving the pinned npm solc.

py-solc-x expects a native ``solc``; ``scripts/solc`` is a small Node front end over
solcjs that answers ``--version`` and ``--standard-json``. Output is cached under the
data folder keyed by the hash of every source and setting, so a compile runs once.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass

import solcx

from .config import REPO_ROOT, get_settings
from .errors import ConfigError

CONTRACTS_DIR = REPO_ROOT / "contracts"
SOLC_SHIM = REPO_ROOT / "scripts" / "solc"
OZ_DIR = REPO_ROOT / "node_modules" / "@openzeppelin" / "contracts"
#: contracts deployed by GridMart, in deployment order
CONTRACT_NAMES = ("Points", "MemberRegistry", "ProductRegistry", "Licensing", "FederatedRegistry", "UsageAnchor")


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list
    bytecode: str  # creation code, 0x-prefixed
    deployed_bytecode: str  # runtime code, 0x-prefixed


def _check_toolchain() -> None:
    if shutil.which("node") is None:
        raise ConfigError("Node.js is not installed: install Node 20 (`make up` does it)")
    if not (REPO_ROOT / "node_modules" / "solc").is_dir() or not OZ_DIR.is_dir():
        raise ConfigError("npm packages are missing (solc, @openzeppelin/contracts): run `npm ci` or `make up`")


def standard_input() -> dict:
    """The solc standard-JSON input for every .sol file under contracts/."""
    settings = json.loads((CONTRACTS_DIR / "compiler.json").read_text())
    sources = {
        f"contracts/{p.name}": {"content": p.read_text()} for p in sorted(CONTRACTS_DIR.glob("*.sol"))
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            **settings,
            "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


def _fingerprint(std_input: dict) -> str:
    digest = hashlib.sha256(json.dumps(std_input, sort_keys=True).encode())
    digest.update((REPO_ROOT / "node_modules" / "solc" / "package.json").read_bytes())
    digest.update((OZ_DIR / "package.json").read_bytes())
    return digest.hexdigest()


def compile_contracts(use_cache: bool = True) -> dict[str, CompiledContract]:
    """Compile (or load from cache) all GridMart contracts, keyed by contract name."""
    _check_toolchain()
    std_input = standard_input()
    fingerprint = _fingerprint(std_input)
    cache = get_settings().home / "build" / f"contracts-{fingerprint[:16]}.json"
    if use_cache and cache.exists():
        output = json.loads(cache.read_text())
    else:
        try:
            output = solcx.compile_standard(std_input, base_path=str(REPO_ROOT), solc_binary=str(SOLC_SHIM))
        except solcx.exceptions.SolcError as exc:
            raise ConfigError(f"Solidity compilation failed: {str(exc).splitlines()[0]}") from exc
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(output))
        os.replace(tmp, cache)
    compiled: dict[str, CompiledContract] = {}
    for source, unit in output["contracts"].items():
        if not source.startswith("contracts/"):
            continue
        for name, data in unit.items():
            compiled[name] = CompiledContract(
                name=name,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
            )
    return compiled


def strip_metadata(code: str) -> str:
    """Runtime code without its trailing CBOR metadata (which hashes source paths)."""
    raw = bytes.fromhex(code.removeprefix("0x"))
    if len(raw) < 2:
        return raw.hex()
    meta_len = int.from_bytes(raw[-2:], "big")
    return raw[: -(meta_len + 2)].hex() if meta_len + 2 <= len(raw) else raw.hex()
