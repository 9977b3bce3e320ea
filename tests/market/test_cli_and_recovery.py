"""The `gridmart` CLI against a marketplace process, and recovery when that process dies mid-publish."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from ledger_node.config import REPO_ROOT, get_settings
from ledger_node.devnet import free_port
from marketplace.client import MarketClient

PASSWORD = "correct horse"


class Server:
    """`gridmart serve` in its own process, with its own data folder and database."""

    def __init__(self, home: Path, devnet_url: str, operator, fault: str | None = None):
        self.home, self.port = home, free_port()
        keystores = home / "keystores"
        keystores.mkdir(parents=True, exist_ok=True)
        if not (keystores / "operator.json").exists():
            (keystores / "operator.json").write_text(json.dumps(Account.encrypt(operator.key, PASSWORD)))
        self.env = {**os.environ, "GRIDMART_HOME": str(home), "GRIDMART_RPC_URL": devnet_url,
                    "GRIDMART_DEPLOYMENTS_DIR": str(get_settings().deployments_dir),
                    "GRIDMART_WALLET_PASSWORD": PASSWORD, "GRIDMART_DOMAIN": f"127.0.0.1:{self.port}",
                    "GRIDMART_DATABASE_URL": f"sqlite:///{home / 'market.db'}", "GRIDMART_SESSION_SECRET": "s3cret",
                    "GRIDMART_API_URL": f"http://127.0.0.1:{self.port}"}
        if fault:
            self.env["GRIDMART_FAULT"] = fault
        self.env.pop("GRIDMART_IPFS_API", None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        self.proc = subprocess.Popen([sys.executable, "-m", "marketplace.cli.main", "serve", "--port", str(self.port)],
                                     env=self.env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, "gridmart serve did not start"
            time.sleep(0.3)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def cli(self, *args: str, wallet_home: Path | None = None) -> subprocess.CompletedProcess:
        env = {**self.env, "GRIDMART_HOME": str(wallet_home or self.home)}
        return subprocess.run([sys.executable, "-m", "marketplace.cli.main", *args], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=180)


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_cli_story(devnet, operator, tmp_path, gm):
    wallets = tmp_path / "wallets"
    with Server(tmp_path / "server", devnet.url, operator) as server:
        cli = lambda *a: server.cli(*a, wallet_home=wallets)  # noqa: E731
        (wallets / "keystores").mkdir(parents=True)
        (wallets / "keystores" / "operator.json").write_text((server.home / "keystores" / "operator.json").read_text())
        a = json.loads(_ok(cli("wallet", "new", "a", "--json")))["address"]
        b = json.loads(_ok(cli("wallet", "new", "b", "--json")))["address"]
        doc = tmp_path / "id.pdf"
        doc.write_bytes(b"identity")
        _ok(cli("member", "admit", a, "--name", "Province A", "--identity", str(doc), "--roles", "publisher"))
        _ok(cli("member", "admit", b, "--name", "Province B", "--identity", str(doc), "--roles", "subscriber"))
        again = cli("member", "admit", b, "--name", "B", "--identity", str(doc))
        assert again.returncode == 1 and "already a member" in again.stderr
        artifact = tmp_path / "report.pdf"
        artifact.write_bytes(os.urandom(300_000))
        pub = json.loads(_ok(cli("publish", str(artifact), "--title", "Theft report", "--kind", "data",
                                 "--tags", "theft,report", "--encrypt", "-w", "a", "--json")))
        _ok(cli("approve", str(pub["certificate_id"]), "-w", "operator"))
        _ok(cli("plan", str(pub["product_id"]), "--plan", "month", "--price", "20", "-w", "a"))
        listed = json.loads(_ok(cli("catalogue", "--tag", "theft", "--json")))
        assert [p["id"] for p in listed] == [pub["product_id"]]
        order = json.loads(_ok(cli("buy", str(pub["product_id"]), "--plan", "month", "-w", "b", "--json")))
        assert order["balance"] == 480
        out = tmp_path / "got.pdf"
        _ok(cli("redeem", order["licence_id"], "--out", str(out), "-w", "b"))
        assert out.read_bytes() == artifact.read_bytes()
        points = json.loads(_ok(cli("points", "-w", "b", "--json")))
        assert points["balance"] == 480 and [h["delta"] for h in points["history"]] == [500, -19, -1]  # 20 points: fee round(1.2) = 1
        wrong = cli("buy", str(pub["product_id"]), "--plan", "month", "-w", "b", "--password", "nope")
        assert wrong.returncode == 1 and wrong.stderr.strip() == "error: wrong password for wallet 'b'"
        assert len(wrong.stderr.strip().splitlines()) == 1
    down = server.cli("catalogue")
    assert down.returncode == 1 and "cannot reach the marketplace" in down.stderr


def test_a_crash_between_chain_and_database_is_repaired(devnet, operator, tmp_path, gm):
    home = tmp_path / "server"
    publisher = Account.create()
    with Server(home, devnet.url, operator) as server:
        op = MarketClient(server.url, operator)
        op.login()
        op.admit(publisher.address, "Province C", b"id", ["publisher"])
    count_before = gm.products.count()
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(os.urandom(5000))
    with Server(home, devnet.url, operator, fault="after_certificate") as crashing:
        client = MarketClient(crashing.url, publisher)
        client.login()
        with pytest.raises(httpx.HTTPError):
            client.publish(artifact, {"title": "Survivor", "kind": "tool"})
        crashing.proc.wait(timeout=30)
        assert crashing.proc.returncode == 17  # died between the chain and the database
    assert gm.products.count() == count_before + 1  # the certificate is on chain
    with Server(home, devnet.url, operator) as server:  # restart: the indexer repairs the index
        items = MarketClient(server.url).catalogue(on_shelf=False, publisher=publisher.address)
        assert [p["title"] for p in items] == ["Survivor"]
        page = MarketClient(server.url).product(items[0]["id"])
        assert page["versions"][0]["metadata"]["title"] == "Survivor"
        assert len(page["versions"]) == 1  # nothing duplicated
