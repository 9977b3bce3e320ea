"""`gridmart council propose|approve|cancel|execute|status`: admin actions behind the timelock.

Council members sign with their own wallets, straight to the chain (not through the
marketplace API: the service's key has no part in admin actions). A proposal runs once
`threshold` members approved it and the timelock's delay is over; anyone may execute it then.
"""
from __future__ import annotations

import os
import time
from typing import Any

import typer

from ledger_node.contracts import GridMart, ProposalStatus, connect_gridmart
from ledger_node.errors import ConfigError, ContractRevert

from ._common import JsonOpt, PasswordOpt, emit, signer

app = typer.Typer(no_args_is_help=True)
CouncilWalletOpt = typer.Option(..., "--wallet", "-w", help="keystore name of your council member wallet")

#: contract name -> attribute of GridMart
CONTRACTS = {"Points": "points", "MemberRegistry": "members", "ProductRegistry": "products", "Licensing": "licensing",
             "FederatedRegistry": "federated", "UsageAnchor": "usage", "GridMartTimelock": "timelock",
             "ConsortiumCouncil": "council"}
MESSAGES = {
    "NotCouncilMember": "wallet {0} is not a council member: sign with a member's wallet (`gridmart council status`)",
    "AlreadyApproved": "you already approved this proposal: another member must approve it",
    "AlreadyVotedCancel": "you already voted to cancel this proposal: another member must vote too",
    "NotPending": "this proposal no longer collects approvals (it is scheduled or cancelled)",
    "NotScheduled": "this proposal is not scheduled: it needs more approvals, or was cancelled",
    "ProposalExists": "the same call was already proposed: approve it, or pass another --salt",
    "UnknownProposal": "no such proposal: check the id (`gridmart council status`)",
    "AlreadyCancelled": "this proposal is already cancelled",
    "AlreadyExecuted": "this proposal was already executed",
    "TimelockUnexpectedOperationState": "the timelock's delay is not over yet (or it already ran): see "
                                        "`gridmart council status ID`",
}


def _chain(wallet: str | None = None, password: str | None = None) -> GridMart:
    return connect_gridmart(signer(wallet, password) if wallet else None)


def _proposal_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise typer.BadParameter("a proposal id is 32 bytes: 0x + 64 hex digits, as `propose` printed it")
    return raw


def _run(fn, *args: Any):
    try:
        return fn(*args)
    except ContractRevert as exc:
        if exc.error_name in MESSAGES:
            raise ConfigError(MESSAGES[exc.error_name].format(*exc.error_args)) from None
        raise


def _argument(gm: GridMart, client, kind: str, text: str) -> Any:
    """A CLI word as the ABI type `kind`; a bytes32 may be a role name such as OPERATOR_ROLE."""
    if kind == "address":
        if not gm.w3.is_address(text):
            raise typer.BadParameter(f"{text!r} is not an address")
        return gm.w3.to_checksum_address(text)
    if kind.startswith(("uint", "int")):
        try:
            return int(text, 0)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a whole number") from None
    if kind == "bool":
        return text.lower() in ("1", "true", "yes")
    if kind == "bytes32" and text.endswith("_ROLE"):
        return client._call(text)
    if kind.startswith("bytes"):
        return bytes.fromhex(text.removeprefix("0x"))
    if kind == "string":
        return text
    raise typer.BadParameter(f"arguments of type {kind} are not supported here")


@app.command()
def propose(
    contract: str = typer.Argument(..., help=f"one of {', '.join(CONTRACTS)}"),
    function: str = typer.Argument(..., help="e.g. setFeeRecipient, grantRole, revokeRole"),
    args: list[str] = typer.Argument(None, help="the function's arguments (roles by name, e.g. OPERATOR_ROLE)"),
    salt: str = typer.Option(None, "--salt", help="32-byte hex; default random"),
    wallet: str = CouncilWalletOpt,
    password: str = PasswordOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Propose CONTRACT.FUNCTION(ARGS...) as an admin action; your approval counts."""
    if contract not in CONTRACTS:
        raise typer.BadParameter(f"unknown contract {contract!r}: use one of {', '.join(CONTRACTS)}")
    gm = _chain(wallet, password)
    client = getattr(gm, CONTRACTS[contract])
    abi = [i for i in client.contract.abi if i["type"] == "function" and i.get("name") == function]
    if not abi or abi[0]["stateMutability"] in ("view", "pure"):
        raise typer.BadParameter(f"{contract} has no state-changing function {function!r}")
    inputs = abi[0]["inputs"]
    args = args or []
    if len(args) != len(inputs):
        wanted = ", ".join(f"{i['type']} {i['name']}" for i in inputs)
        raise typer.BadParameter(f"{function} takes {len(inputs)} argument(s) ({wanted}), got {len(args)}")
    values = [_argument(gm, client, i["type"], a) for i, a in zip(inputs, args)]
    salt_bytes = _proposal_id(salt) if salt else os.urandom(32)
    pid, _ = _run(gm.council.propose, client.address, client.encode(function, *values), 0, salt_bytes)
    info = _status(gm, pid)
    emit(info, as_json, f"proposal 0x{pid.hex()}: {contract}.{function}({', '.join(args)}) — {_line(info)}")


@app.command()
def approve(proposal: str, wallet: str = CouncilWalletOpt, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Approve PROPOSAL; at the threshold it is scheduled on the timelock."""
    _vote("approve", "approved", proposal, wallet, password, as_json)


@app.command()
def cancel(proposal: str, wallet: str = CouncilWalletOpt, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Vote to cancel PROPOSAL; at the threshold it is cancelled (on the timelock too)."""
    _vote("cancel", "cancel vote on", proposal, wallet, password, as_json)


def _vote(function: str, done: str, proposal: str, wallet: str, password: str, as_json: bool) -> None:
    """A council member's approve or cancel vote, then where the proposal stands."""
    gm = _chain(wallet, password)
    pid = _proposal_id(proposal)
    _run(getattr(gm.council, function), pid)
    info = _status(gm, pid)
    emit(info, as_json, f"{done} 0x{pid.hex()} — {_line(info)}")


@app.command()
def execute(proposal: str, wallet: str = CouncilWalletOpt, password: str = PasswordOpt, as_json: bool = JsonOpt) -> None:
    """Execute PROPOSAL once its delay is over (any wallet may)."""
    gm = _chain(wallet, password)
    pid = _proposal_id(proposal)
    receipt = _run(gm.council.execute, pid)
    info = {**_status(gm, pid), "transaction": receipt["transactionHash"].to_0x_hex()}
    emit(info, as_json, f"executed 0x{pid.hex()} in {info['transaction']}")


@app.command()
def status(proposal: str = typer.Argument(None, help="a proposal id; without it, the council itself"),
           as_json: bool = JsonOpt) -> None:
    """Show the council (members, threshold, delay) or where PROPOSAL stands."""
    gm = _chain()
    if proposal is None:
        info = {"council": gm.council.address, "timelock": gm.timelock.address, "members": gm.council.members(),
                "threshold": gm.council.threshold(), "delay_seconds": gm.timelock.min_delay()}
        text = (f"council {info['council']}: {info['threshold']} of {len(info['members'])} approve; timelock "
                f"{info['timelock']} delays {info['delay_seconds']} s\n" + "\n".join(f"  {m}" for m in info["members"]))
        emit(info, as_json, text)
        return
    info = _status(gm, _proposal_id(proposal))
    emit(info, as_json, _line(info))


def _status(gm: GridMart, pid: bytes) -> dict[str, Any]:
    p = gm.council.proposal(pid)
    state = gm.council.status(pid)
    if state is ProposalStatus.NONE:
        raise ConfigError(f"no proposal 0x{pid.hex()}: check the id")
    ready = gm.timelock.ready_at(pid)
    return {"id": "0x" + pid.hex(), "status": state.name.lower(), "approvals": p["approvals"],
            "threshold": gm.council.threshold(), "target": p["target"], "data": "0x" + p["data"].hex(),
            "ready_at": ready if ready > 1 else None}


def _line(info: dict[str, Any]) -> str:
    if info["status"] == "pending":
        return f"pending: {info['approvals']} of {info['threshold']} approvals"
    if info["status"] == "waiting":
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info["ready_at"]))
        return f"scheduled: executable from {when}"
    return info["status"]
