"""JSON-RPC connection and locally signed transactions.

Every transaction is signed here with an eth-account key (never an unlocked node
account), with a locally tracked nonce; reverts come back as :class:`ContractRevert`
carrying the custom error's name and arguments, decoded from the contracts' ABIs.
"""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError
from web3.types import TxReceipt

from .config import get_settings
from .errors import ChainUnavailable, ContractRevert

PANIC_REASONS = {0x01: "assert", 0x11: "arithmetic overflow", 0x12: "division by zero", 0x21: "bad enum",
                 0x32: "index out of bounds", 0x41: "out of memory"}


def connect(url: str | None = None, timeout: float = 30.0) -> Web3:
    """A Web3 connected to `url` (default: GRIDMART_RPC_URL or the local devnet)."""
    url = url or get_settings().effective_rpc_url
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id
    except Exception as exc:  # noqa: BLE001 - any transport error means "unreachable"
        hint = "check GRIDMART_RPC_URL" if get_settings().rpc_url else "start the devnet with `gridmart chain up`"
        raise ChainUnavailable(f"cannot reach the JSON-RPC endpoint at {url}: {hint}") from exc
    return w3


@lru_cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    from .compiler import compile_contracts

    table: dict[bytes, tuple[str, list[str]]] = {}
    for contract in compile_contracts().values():
        for item in contract.abi:
            if item["type"] == "error":
                types = [_abi_type(i) for i in item["inputs"]]
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                table[selector] = (item["name"], types)
    return table


def _abi_type(item: dict) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return item["type"]


def decode_revert(data: str | bytes | None) -> ContractRevert:
    """Turn revert data into a ContractRevert(name, args)."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else (data or b"")
    if len(raw) < 4:
        return ContractRevert("Reverted", (), "transaction reverted without a reason")
    selector, body = raw[:4], raw[4:]
    if selector == keccak(text="Error(string)")[:4]:
        (msg,) = abi_decode(["string"], body)
        return ContractRevert("Error", (msg,), f"contract reverted: {msg}")
    if selector == keccak(text="Panic(uint256)")[:4]:
        (code,) = abi_decode(["uint256"], body)
        return ContractRevert("Panic", (code,), f"contract panicked: {PANIC_REASONS.get(code, hex(code))}")
    name, types = _error_table().get(selector, (None, None))
    if name is None:
        return ContractRevert("Unknown", (raw.hex(),), f"contract reverted with unknown error 0x{raw[:4].hex()}")
    args = tuple(a.hex() if isinstance(a, bytes) else a for a in abi_decode(types, body))
    return ContractRevert(name, args)


def revert_from(exc: Exception) -> ContractRevert:
    """The ContractRevert a web3 call or estimate error carries (decoded custom error or panic)."""
    data = getattr(exc, "data", None)
    if isinstance(exc, ContractPanicError) and isinstance(data, str):
        return decode_revert(data)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(data)
    return ContractRevert("Reverted", (), f"contract reverted: {exc}")


def _rpc_revert_data(exc: Web3RPCError) -> str | None:
    error = (exc.rpc_response or {}).get("error", {}) if isinstance(getattr(exc, "rpc_response", None), dict) else {}
    data = error.get("data")
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) and data.startswith("0x") and len(data) >= 10 else None


class TxSender:
    """Signs and sends transactions for one account, tracking its nonce locally.

    Thread-safe: the nonce is taken under a lock. Gas is estimated (which also surfaces a
    revert before anything is sent) unless the caller passes a fixed `gas` for hot paths.
    """

    def __init__(self, w3: Web3, account: LocalAccount):
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.chain_id = w3.eth.chain_id
        self._lock = threading.Lock()
        self._nonce = w3.eth.get_transaction_count(account.address, "pending")
        # A consortium devnet runs with a zero base fee: gas is counted but free.
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
        self.gas_price = 0 if base_fee == 0 else w3.eth.gas_price

    def send(self, fn: Any, gas: int | None = None, wait: bool = True) -> TxReceipt | bytes:
        """Send a contract function call; returns the receipt (or tx hash if not waiting)."""
        tx: dict[str, Any] = {"from": self.address, "chainId": self.chain_id, "gasPrice": self.gas_price}
        if gas is None:
            try:
                gas = int(fn.estimate_gas({"from": self.address}) * 1.2) + 10_000
            except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                raise revert_from(exc) from None
        tx["gas"] = gas
        with self._lock:
            for attempt in (1, 2):
                tx["nonce"] = self._nonce
                signed = self.account.sign_transaction(fn.build_transaction(tx))
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                    break
                except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                    self.resync()
                    raise revert_from(exc) from None
                except Web3RPCError as exc:
                    self.resync()
                    revert_data = _rpc_revert_data(exc)
                    if revert_data:  # a node that mines reverting txs (fixed gas) reports them here
                        raise decode_revert(revert_data) from None
                    # another process used this account, or the chain was reset: resync once
                    if attempt == 2 or "nonce" not in str(exc).lower():
                        raise
            self._nonce += 1
        if not wait:
            return tx_hash
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise self._replay_revert(fn, receipt)
        return receipt

    def resync(self) -> None:
        """Reload the account's nonce from the chain."""
        self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")

    def _replay_revert(self, fn: Any, receipt: TxReceipt) -> ContractRevert:
        try:
            fn.call({"from": self.address}, block_identifier=receipt["blockNumber"] - 1)
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            return revert_from(exc)
        return ContractRevert("Reverted", (), f"transaction {receipt['transactionHash'].hex()} reverted (out of gas?)")


def call(fn: Any, **kwargs: Any) -> Any:
    """A view call whose revert becomes a ContractRevert."""
    try:
        return fn.call(kwargs or None)
    except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
        raise revert_from(exc) from None
