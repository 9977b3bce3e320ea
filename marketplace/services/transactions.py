"""Members' own transactions (purchase, price plans, FL reward pools), signed by their wallets, relayed here.

The contracts pay the seller from `msg.sender`, so a purchase must be signed by the buyer.
The service prepares the exact transaction, the wallet signs it, and the service checks
it (sender, contract, function) before broadcasting it, so the CLI and web pages never
need their own JSON-RPC access. A wallet that only signs to send (MetaMask) broadcasts it
itself; the service then checks the same things on the transaction it finds by hash.
"""
from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, TransactionNotFound

from ledger_node.chain import revert_from
from ledger_node.contracts import PlanKind

from . import catalogue as shelf
from .auth import Principal
from .context import Context
from .errors import BadRequest, Conflict, Forbidden, NotFound

PLAN_KINDS = {"per-use": PlanKind.PER_USE, "week": PlanKind.WEEK, "month": PlanKind.MONTH, "year": PlanKind.YEAR}
#: action -> (contract attribute of GridMart, contract function, gas limit)
ACTIONS = {"purchase": ("licensing", "purchase", 200_000), "set_plan": ("licensing", "setPlan", 150_000),
           "fund_task": ("federated", "fundTask", 120_000)}

REVERT_MESSAGES = {
    "InsufficientPoints": (Conflict, "too few points for this plan"),
    "NotOnShelf": (Conflict, "this product is off the shelf (or its new version awaits approval): it cannot be bought"),
    "PlanNotOffered": (NotFound, "the publisher does not offer this plan"),
    "NotSubscriber": (Forbidden, "only an active subscriber may buy"),
    "NotProductPublisher": (Forbidden, "only the product's publisher may set its plans"),
    "PublisherNotActive": (Forbidden, "the product's publisher ({1}) is not an active publisher member (suspended, "
                                      "or its publisher role was withdrawn): its product can be neither priced nor bought"),
    "OwnProduct": (Forbidden, "you published product {0}: a publisher cannot buy its own product"),
    "PriceOutOfRange": (BadRequest, "price {0} is outside the allowed range {1}-{2} points"),
    "InvalidPlan": (BadRequest, "a per-use plan needs uses > 0; time plans take no uses"),
    "UnknownTask": (NotFound, "no such federated-learning task on chain"),
    "TaskClosed": (Conflict, "the federated-learning task is already finalised"),
    "Unauthorized": (Forbidden, "only the task's owner may fund its reward pool"),
}


def plan_kind(name: str) -> PlanKind:
    try:
        return PLAN_KINDS[name]
    except KeyError:
        raise BadRequest(f"unknown plan {name!r}: use per-use, week, month or year") from None


def prepare(ctx: Context, principal: Principal, action: str, args: list[Any]) -> dict[str, Any]:
    """An unsigned EIP-1559 transaction for the member's wallet to sign."""
    if action not in ACTIONS:
        raise BadRequest(f"unknown action {action!r}")
    contract_name, fn_name, gas = ACTIONS[action]
    contract = getattr(ctx.chain, contract_name)
    w3 = ctx.chain.w3
    fn = getattr(contract.contract.functions, fn_name)(*args)
    try:  # a dry run surfaces the contract's refusal before anything is signed
        fn.call({"from": principal.address})
    except (ContractCustomError, ContractLogicError) as exc:
        if action in ("purchase", "set_plan") and shelf.chain_view(ctx).status(args[0]) is None:
            raise NotFound(f"there is no product {args[0]}: find one with `gridmart catalogue`") from None
        raise to_http(revert_from(exc)) from None
    fee = ctx.chain.sender.gas_price
    return {
        "type": 2, "chainId": ctx.chain_id, "to": contract.address, "value": 0, "gas": gas,
        "nonce": w3.eth.get_transaction_count(principal.address, "pending"),
        "maxFeePerGas": fee, "maxPriorityFeePerGas": 0, "data": fn._encode_transaction_data(),
    }


def relay(ctx: Context, principal: Principal, action: str, raw_tx: str) -> dict[str, Any]:
    """Check a signed transaction against `action` and the session, broadcast it, return its receipt."""
    try:
        raw = HexBytes(raw_tx)
        sender = Account.recover_transaction(raw)
        tx = TypedTransaction.from_bytes(raw).as_dict()
    except Exception:  # noqa: BLE001 - any decoding problem is the caller's
        raise BadRequest("the signed transaction is malformed: sign the transaction from /tx/prepare") from None
    fn = _check(ctx, principal, action, sender, tx)
    w3 = ctx.chain.w3
    try:
        tx_hash = w3.eth.send_raw_transaction(raw)
    except (ContractCustomError, ContractLogicError) as exc:
        raise to_http(revert_from(exc)) from None
    except Exception as exc:  # noqa: BLE001 - node refused it (nonce, fee)
        raise BadRequest(f"the chain refused the transaction: {exc}") from None
    return _outcome(fn, sender, w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120))


def sent(ctx: Context, principal: Principal, action: str, tx_hash: str) -> dict[str, Any]:
    """The receipt of a transaction the member's wallet broadcast itself (wallets such as MetaMask
    sign only to send), after the same checks as `relay`. Reading it again is harmless: the
    chain did the work once, this only reports it."""
    try:
        digest = HexBytes(tx_hash)
    except (ValueError, TypeError):
        digest = b""
    if len(digest) != 32:
        raise BadRequest("tx_hash must be the 32-byte hash (0x + 64 hex digits) the wallet returned")
    w3 = ctx.chain.w3
    try:
        tx = w3.eth.get_transaction(digest)
    except TransactionNotFound:
        raise NotFound(f"no transaction {tx_hash} on this chain: is the wallet connected to it?") from None
    fn = _check(ctx, principal, action, tx["from"], {**tx, "chainId": tx.get("chainId", ctx.chain_id)})
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx["hash"], timeout=120)
    except TimeExhausted:
        raise Conflict("the transaction is not mined yet: send the same hash again in a moment") from None
    return _outcome(fn, tx["from"], receipt)


def _check(ctx: Context, principal: Principal, action: str, sender: str, tx: dict[str, Any]):
    """The contract call `tx` makes, if it is `action` on this chain by the session's wallet."""
    if sender != principal.address:
        raise Forbidden("the transaction was signed by another wallet than your session's")
    if action not in ACTIONS:
        raise BadRequest(f"unknown action {action!r}")
    contract_name, fn_name, _gas = ACTIONS[action]
    contract = getattr(ctx.chain, contract_name)
    if tx.get("chainId") != ctx.chain_id or HexBytes(tx.get("to") or b"") != HexBytes(contract.address):
        raise BadRequest("the transaction is for another chain or contract")
    try:
        fn, args = contract.contract.decode_function_input(tx.get("data") or tx.get("input"))
    except ValueError:
        raise BadRequest(f"the transaction does not call {action}") from None
    if fn.fn_name != fn_name:
        raise BadRequest(f"the transaction does not call {action}")
    return fn(**args)  # bound to its arguments: a revert is replayed as a call to find its reason


def _outcome(fn, sender: str, receipt) -> dict[str, Any]:
    """The receipt of a successful call; a revert becomes the contract's reason in words."""
    if receipt["status"] != 1:
        try:
            fn.call({"from": sender}, block_identifier=receipt["blockNumber"] - 1)
        except (ContractCustomError, ContractLogicError) as exc:
            raise to_http(revert_from(exc)) from None
        raise BadRequest("the transaction reverted")
    return receipt


def to_http(exc) -> Exception:
    """The HTTP error for a contract revert; a message's {0}, {1}... are the custom error's arguments."""
    if exc.error_name not in REVERT_MESSAGES:
        return BadRequest(str(exc))
    cls, message = REVERT_MESSAGES[exc.error_name]
    return cls(message.format(*exc.error_args))
