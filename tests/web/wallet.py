"""A test wallet behind the EIP-1193 provider injected into the page: real signatures with a local key."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import BrowserContext

PROVIDER_JS = Path(__file__).with_name("wallet.js")
QUANTITIES = ("value", "gas", "nonce", "maxFeePerGas", "maxPriorityFeePerGas", "chainId", "type")


class TestWallet:
    """Answers the page's wallet requests for one account.

    `reject_next` refuses the next signature as a user would (EIP-1193 code 4001); methods in
    `unsupported` answer 4200, as MetaMask does for eth_signTransaction. eth_sendTransaction
    signs and broadcasts to the chain at `w3`, as a wallet connected to it does.
    """

    __test__ = False  # not a pytest class

    def __init__(self, account: LocalAccount, w3=None):
        self.account = account
        self.w3 = w3
        self.requests: list[str] = []
        self.reject_next = False
        self.unsupported: set[str] = set()
        self.added_chains: list[dict] = []

    def attach(self, context: BrowserContext) -> None:
        context.expose_binding("__gridmartWallet", lambda _source, method, params: self.handle(method, params))
        context.add_init_script(path=PROVIDER_JS)

    def handle(self, method: str, params_json: str) -> dict[str, Any]:
        self.requests.append(method)
        params = json.loads(params_json)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return {"result": [self.account.address]}
        if method in self.unsupported or method not in ("personal_sign", "eth_signTypedData_v4", "eth_signTransaction",
                                                        "eth_sendTransaction", "eth_call", "wallet_addEthereumChain"):
            return {"error": {"code": 4200, "message": f"{method} is not supported"}}
        if self.reject_next:
            self.reject_next = False
            return {"error": {"code": 4001, "message": "User rejected the request."}}
        return {"result": getattr(self, method)(*params)}

    def wallet_addEthereumChain(self, chain: dict) -> None:  # noqa: N802 (the EIP-3085 method name)
        self.added_chains.append(chain)

    def _own(self, address: str) -> None:
        assert address.lower() == self.account.address.lower(), f"the page asked {address} to sign"

    def personal_sign(self, data: str, address: str) -> str:
        self._own(address)
        return self.account.sign_message(encode_defunct(hexstr=data)).signature.to_0x_hex()

    def eth_signTypedData_v4(self, address: str, document: str) -> str:
        self._own(address)
        return self.account.sign_message(encode_typed_data(full_message=json.loads(document))).signature.to_0x_hex()

    def eth_signTransaction(self, tx: dict[str, Any]) -> str:
        self._own(tx.pop("from"))
        tx = {k: int(v, 16) if k in QUANTITIES else v for k, v in tx.items()}
        return self.account.sign_transaction(tx).raw_transaction.to_0x_hex()

    def eth_call(self, call: dict[str, Any], block: str = "latest") -> str:
        """A read-only call on the wallet's node, as MetaMask answers it (the page checks certificates this way)."""
        return self.w3.eth.call({"to": call["to"], "data": call["data"]}, block).to_0x_hex()

    def eth_sendTransaction(self, tx: dict[str, Any]) -> str:
        return self.w3.eth.send_raw_transaction(self.eth_signTransaction(tx)).to_0x_hex()
