"""The attack suite runs against the real marketplace (tests/market/conftest.py: uvicorn, the
session Hardhat node, js-ipfs). Here: signed-in actors of every kind, for any security test."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from marketplace.client import MarketClient
from tests.market.conftest import client, ipfs, listed, market, unit  # noqa: F401 - the running marketplace

ROLES = {"publisher": ["publisher"], "subscriber": ["subscriber"], "member": ["publisher", "subscriber"],
         "auditor": ["auditor"]}


@dataclass(frozen=True)
class Actor:
    """Someone calling the API: `client` is signed in (SIWE) unless the actor is anonymous."""

    name: str
    account: LocalAccount | None
    client: MarketClient

    @property
    def token(self) -> str | None:
        return self.client.token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def sign_in(url: str, account: LocalAccount) -> MarketClient:
    """A client signed in by the real SIWE flow (POST /auth/nonce, personal_sign, POST /auth/login)."""
    c = MarketClient(url, account)
    c.login()
    return c


def make_actors(url: str, operator: LocalAccount) -> dict[str, Actor]:
    """anonymous, operator, outsider (signed in, not a member), and one admitted member per
    entry of ROLES (publisher, subscriber, member = both, auditor), each signed in once."""
    op = sign_in(url, operator)
    out = {"anonymous": Actor("anonymous", None, MarketClient(url)), "operator": Actor("operator", operator, op)}
    outsider = Account.create()
    out["outsider"] = Actor("outsider", outsider, sign_in(url, outsider))
    for name, roles in ROLES.items():
        account = Account.create()
        op.admit(account.address, f"security {name}", f"identity of security {name}".encode(), roles)
        out[name] = Actor(name, account, sign_in(url, account))
    return out


def close(actors: dict[str, Actor]) -> None:
    for actor in actors.values():
        actor.client.http.close()


@pytest.fixture(scope="session")
def actors(market, operator) -> Iterator[dict[str, Actor]]:
    """`make_actors` on the session marketplace."""
    out = make_actors(market[0], operator)
    yield out
    close(out)
