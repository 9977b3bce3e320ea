"""Chain tests use the session Hardhat node from tests/conftest.py; tests that move the
node's clock get a node of their own, because Hardhat's time offset survives evm_revert."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from ledger_node.chain import connect
from ledger_node.config import get_settings
from ledger_node.contracts import GridMart, Role
from ledger_node.deploy import deploy
from ledger_node.devnet import Devnet, free_port


@pytest.fixture
def time_machine(tmp_path) -> Iterator[tuple[GridMart, callable]]:
    """(operator GridMart, member factory) on a fresh devnet whose clock the test may move."""
    net = Devnet(port=free_port(), workdir=get_settings().home / f"devnet-{tmp_path.name}").start()
    try:
        operator = Account.create()
        book, _ = deploy(connect(net.url), operator, directory=tmp_path)
        gm = GridMart(connect(net.url), book, operator)

        def member(roles: Role = Role.PUBLISHER | Role.SUBSCRIBER):
            account = Account.create()
            gm.members.admit(account.address, "unit", b"\x11" * 32, roles)
            return account, gm.as_account(account)

        yield gm, member
    finally:
        net.stop()
