"""Offline compile (two ways that agree), typed-data single source, deploy idempotency, devnet lifecycle."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from eth_account import Account

from ledger_node.compiler import CONTRACT_NAMES, REPO_ROOT, compile_contracts, strip_metadata
from ledger_node.config import get_settings
from ledger_node.deploy import GOVERNANCE_NAMES, AddressBook, deploy
from ledger_node.devnet import Devnet, free_port, rpc_ready
from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_domain

from ledger_node.typed_data import full_message, solidity_library, type_hash


def test_py_solc_x_and_hardhat_compile_the_same_runtime_code():
    ours = compile_contracts(use_cache=False)
    out = subprocess.run(["npx", "hardhat", "compile", "--force", "--quiet"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    artifacts = REPO_ROOT / ".gridmart" / "hardhat" / "artifacts" / "contracts"
    for name in CONTRACT_NAMES + GOVERNANCE_NAMES:
        hardhat = json.loads((artifacts / f"{name}.sol" / f"{name}.json").read_text())
        assert strip_metadata(hardhat["deployedBytecode"]) == strip_metadata(ours[name].deployed_bytecode), name
        assert len(ours[name].deployed_bytecode) > 1000


def test_typed_data_library_is_generated_from_the_single_spec(gm):
    assert (REPO_ROOT / "contracts" / "TypedData.sol").read_text() == solidity_library()
    # Python's domain for each verifying contract equals the one the contract computes
    for client in (gm.products, gm.licensing):
        domain = full_message("Redeem", {}, gm.w3.eth.chain_id, client.address)["domain"]
        assert hash_domain(domain) == client._call("domainSeparator")
    assert type_hash("Listing") != type_hash("Redeem")


def test_deploy_is_idempotent_and_redeploys_when_code_is_gone(w3, tmp_path):
    operator = Account.create()
    book, reused = deploy(w3, operator, directory=tmp_path)
    assert not reused
    path = AddressBook.path_for(book.chain_id, tmp_path)
    assert json.loads(path.read_text())["addresses"] == book.addresses
    again, reused = deploy(w3, operator, directory=tmp_path)
    assert reused and again.addresses == book.addresses
    # an address book pointing at an address without the code is not trusted
    data = json.loads(path.read_text())
    data["addresses"]["Points"] = Account.create().address
    path.write_text(json.dumps(data))
    fresh, reused = deploy(w3, operator, directory=tmp_path)
    assert not reused and fresh.addresses["Points"] != data["addresses"]["Points"]
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_devnet_starts_stops_and_leaves_no_process(tmp_path):
    net = Devnet(port=free_port(), workdir=tmp_path).start()
    pid = net.running_pid()
    assert pid and rpc_ready(net.url)
    assert net.log_path.exists()
    assert net.stop()
    assert not rpc_ready(net.url)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "marketplace.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, cwd=REPO_ROOT)


def test_cli_bad_input_gives_one_clear_line(w3, gm, tmp_path):
    out = _cli("chain", "status", env={"GRIDMART_RPC_URL": "http://127.0.0.1:9"})
    assert out.returncode != 0 and "not reachable" in out.stdout
    out = _cli("member", "show", "0x0000000000000000000000000000000000000001",
               env={"GRIDMART_RPC_URL": "http://127.0.0.1:9"})
    assert out.returncode == 1 and out.stderr.strip().startswith("error: cannot reach the JSON-RPC endpoint")
    assert len(out.stderr.strip().splitlines()) == 1

    home = {"GRIDMART_HOME": str(tmp_path)}
    assert _cli("wallet", "new", "alice", "--password", "right", env=home).returncode == 0
    assert "alice" in _cli("wallet", "list", env=home).stdout
    out = _cli("deploy", "--wallet", "alice", "--password", "wrong", env=home)
    assert out.returncode == 1 and out.stderr.strip() == "error: wrong password for wallet 'alice'"

    rpc = {"GRIDMART_RPC_URL": w3.provider.endpoint_uri, "GRIDMART_DEPLOYMENTS_DIR": str(get_settings().deployments_dir)}
    out = _cli("member", "show", "not-an-address", env=rpc)
    assert out.returncode == 1 and "is neither an Ethereum address (0x followed by 40 hex digits) nor a wallet" in out.stderr
    out = _cli("member", "show", Account.create().address, env=rpc)
    assert out.returncode == 1 and "is not a member" in out.stderr
