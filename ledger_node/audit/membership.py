"""A member's roles and status at any point of the chain, replayed from MemberRegistry events.

The contract keeps only the current state; whether a signer was an active publisher *when*
it signed needs the history, which only the events hold.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..contracts import Role
from .ledger import Event, Ledger

MEMBER_EVENTS = ("MemberAdmitted", "RolesChanged", "MemberSuspended", "MemberReinstated")


@dataclass(frozen=True)
class MemberState:
    roles: int = 0
    status: str = "none"  # none / active / suspended
    admitted: Event | None = None

    def active_with(self, role: Role) -> bool:
        return self.status == "active" and self.roles & int(role) == int(role)


def member_events(ledger: Ledger, wallet: str) -> list[Event]:
    events = [e for name in MEMBER_EVENTS for e in ledger.events("members", name, wallet=wallet)]
    return sorted(events, key=lambda e: e.position)


def replay(events: list[Event], before: tuple[int, int] | None = None) -> MemberState:
    """The state after every event strictly before `before` = (block, log index); all if None."""
    state = MemberState()
    for e in sorted(events, key=lambda e: e.position):
        if before is not None and e.position >= before:
            break
        if e.name == "MemberAdmitted":
            state = MemberState(e.args["roles"], "active", e)
        elif e.name == "RolesChanged":
            state = MemberState(e.args["roles"], state.status, state.admitted)
        elif e.name == "MemberSuspended":
            state = MemberState(state.roles, "suspended", state.admitted)
        elif e.name == "MemberReinstated":
            state = MemberState(state.roles, "active", state.admitted)
    return state


def role_names(roles: int) -> str:
    return ",".join(r.name.lower() for r in Role if roles & int(r)) or "none"
