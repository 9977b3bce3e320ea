"""The two devnet clients: anvil keeps its state across restarts (and mostly across a
crash), Hardhat starts empty; both are the same chain (id, accounts, free gas) and both
refuse a port another process holds."""
from __future__ import annotations

import os
import signal
import socket
import time

import pytest
from eth_account import Account
from web3 import Web3

from ledger_node import devnet as devnet_mod
from ledger_node.chain import connect
from ledger_node.contracts import GridMart, Role
from ledger_node.deploy import deploy
from ledger_node.devnet import STATE_INTERVAL, Devnet, devnet_client, free_port, rpc_ready
from ledger_node.errors import ConfigError

#: the Hardhat mnemonic's first accounts (what both clients must fund)
FIRST_ACCOUNTS = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                  "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"]


@pytest.fixture
def anvil(tmp_path):
    net = Devnet(port=free_port(), workdir=tmp_path / "anvil", client="anvil")
    yield net
    net.stop()


def _send_eth(w3: Web3, to: str, value: int) -> dict:
    tx_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": to, "value": value, "gasPrice": 0})
    return w3.eth.wait_for_transaction_receipt(tx_hash)


def test_the_client_comes_from_gridmart_devnet(monkeypatch, tmp_path):
    monkeypatch.delenv("GRIDMART_DEVNET", raising=False)
    assert devnet_client() == "anvil" and Devnet.default().client == "anvil"  # `gridmart up`
    assert Devnet(port=1, workdir=tmp_path).client == "hardhat"  # tests and benches (see devnet.py)
    monkeypatch.setenv("GRIDMART_DEVNET", "anvil")
    assert Devnet(port=1, workdir=tmp_path).client == "anvil"
    monkeypatch.setenv("GRIDMART_DEVNET", "Hardhat")
    assert Devnet(port=1, workdir=tmp_path).client == "hardhat"
    assert Devnet.default().client == "hardhat"
    monkeypatch.setenv("GRIDMART_DEVNET", "ganache")
    with pytest.raises(ConfigError, match="GRIDMART_DEVNET='ganache'"):
        Devnet(port=1, workdir=tmp_path)
    with pytest.raises(ConfigError, match="unknown devnet client"):
        Devnet(port=1, workdir=tmp_path, client="geth")


def test_anvil_keeps_contracts_members_blocks_and_logs_across_a_restart(anvil, tmp_path):
    anvil.start()
    w3 = connect(anvil.url)
    operator = Account.create()
    book, reused = deploy(w3, operator, directory=tmp_path)
    assert not reused
    gm = GridMart(w3, book, operator)
    unit = Account.create()
    gm.members.admit(unit.address, "Jiangsu", b"\x01" * 32, Role.PUBLISHER)
    receiver = Account.create().address
    _send_eth(w3, receiver, 12345)
    before = {"block": w3.eth.block_number, "code": w3.eth.get_code(book.addresses["MemberRegistry"]),
              "points": gm.points.balance_of(unit.address), "balance": w3.eth.get_balance(receiver),
              "logs": len(w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})),
              "head": w3.eth.get_block("latest")["hash"]}
    assert before["points"] > 0 and before["logs"] > 0

    assert anvil.stop()
    assert not rpc_ready(anvil.url) and anvil.state_path.stat().st_size > 0
    anvil.start()
    w3 = connect(anvil.url)
    gm = GridMart(w3, book, operator)
    after = {"block": w3.eth.block_number, "code": w3.eth.get_code(book.addresses["MemberRegistry"]),
             "points": gm.points.balance_of(unit.address), "balance": w3.eth.get_balance(receiver),
             "logs": len(w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})),
             "head": w3.eth.get_block("latest")["hash"]}
    assert after == before
    assert gm.members.member(unit.address).roles == Role.PUBLISHER
    # the same deployment is recognised, and the chain goes on from where it stopped
    again, reused = deploy(w3, operator, directory=tmp_path)
    assert reused and again.addresses == book.addresses
    second = Account.create()
    gm.members.admit(second.address, "Zhejiang", b"\x02" * 32, Role.SUBSCRIBER)
    assert w3.eth.block_number == before["block"] + 1


def test_anvil_after_kill_9_loses_at_most_the_last_state_interval(anvil):
    anvil.start()
    w3 = connect(anvil.url)
    kept = Account.create().address
    block = _send_eth(w3, kept, 1)["blockNumber"]
    time.sleep(STATE_INTERVAL + 1.5)  # a periodic dump has happened since
    pid = anvil.running_pid()
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while rpc_ready(anvil.url) and time.monotonic() < deadline:
        time.sleep(0.05)
    anvil.stop()  # reaps and forgets the dead node
    anvil.start()
    w3 = connect(anvil.url)
    assert w3.eth.block_number >= block
    assert w3.eth.get_balance(kept) == 1


def test_hardhat_keeps_no_state(tmp_path):
    net = Devnet(port=free_port(), workdir=tmp_path / "hardhat", client="hardhat")
    try:
        net.start()
        _send_eth(connect(net.url), Account.create().address, 1)
        assert connect(net.url).eth.block_number == 1
        net.stop()
        net.start()
        assert connect(net.url).eth.block_number == 0
        assert net.state_path is None and not (tmp_path / "hardhat" / "state.json").exists()
    finally:
        net.stop()


def test_both_clients_are_the_same_chain(tmp_path):
    seen = {}
    for client in ("anvil", "hardhat"):
        net = Devnet(port=free_port(), workdir=tmp_path / client, client=client)
        try:
            w3 = connect(net.start().url)
            latest = w3.eth.get_block("latest")
            seen[client] = {"chain_id": w3.eth.chain_id, "accounts": w3.eth.accounts,
                            "balance": w3.eth.get_balance(FIRST_ACCOUNTS[0]), "base_fee": latest["baseFeePerGas"],
                            "gas_limit": latest["gasLimit"], "block": latest["number"]}
            assert client in w3.client_version.lower() or (client == "hardhat" and "hardhatnetwork" in
                                                            w3.client_version.lower())
        finally:
            net.stop()
    assert seen["anvil"] == seen["hardhat"]
    assert seen["anvil"]["chain_id"] == 31337 and seen["anvil"]["accounts"][:3] == FIRST_ACCOUNTS
    assert len(seen["anvil"]["accounts"]) == 10 and seen["anvil"]["balance"] == 10_000 * 10**18
    assert seen["anvil"]["base_fee"] == 0 and seen["anvil"]["gas_limit"] == 30_000_000


@pytest.mark.parametrize("client", ["anvil", "hardhat"])
def test_a_taken_port_is_refused_clearly(tmp_path, client):
    with socket.socket() as squatter:  # a process that listens but speaks no JSON-RPC
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} is taken"):
            Devnet(port=port, workdir=tmp_path / "a", client=client).start()
    assert not (tmp_path / "a" / "node.pid").exists()


def test_a_port_served_by_another_node_is_refused(anvil, tmp_path):
    anvil.start()
    with pytest.raises(ConfigError, match=f"port {anvil.port} is already served by another process"):
        Devnet(port=anvil.port, workdir=tmp_path / "other", client="anvil").start()
    # the same folder with the other client: say which one runs
    with pytest.raises(ConfigError, match="runs anvil, not hardhat"):
        Devnet(port=anvil.port, workdir=anvil.workdir, client="hardhat").start()
    assert Devnet(port=anvil.port, workdir=anvil.workdir, client="anvil").start().running_pid() == anvil.running_pid()


def test_a_missing_binary_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(devnet_mod, "ANVIL_BIN", tmp_path / "no-anvil")
    with pytest.raises(ConfigError, match=r"@foundry-rs/anvil-linux-amd64.*run `make up` or `npm install`"):
        Devnet(port=free_port(), workdir=tmp_path / "a", client="anvil").start()


def test_anvil_recovers_from_a_state_file_cut_short_by_a_crash(anvil):
    anvil.start()
    w3 = connect(anvil.url)
    kept = Account.create().address
    _send_eth(w3, kept, 7)
    anvil.stop()
    anvil.start()  # a clean state: kept as state.good.json
    assert anvil.good_state_path.exists()
    _send_eth(connect(anvil.url), Account.create().address, 1)
    anvil.stop()
    # a crash in the middle of a dump: anvil rewrites the file in place
    data = anvil.state_path.read_bytes()
    anvil.state_path.write_bytes(data[: len(data) // 2])
    anvil.start()
    w3 = connect(anvil.url)
    assert w3.eth.get_balance(kept) == 7 and w3.eth.block_number == 1  # the state of the previous start
    assert len(list(anvil.workdir.glob("state.corrupt-*.json"))) == 1
    assert "is damaged" in anvil.log_path.read_text()
