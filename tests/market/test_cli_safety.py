"""#18 item 4: a CLI command loses nothing: `redeem --out` never replaces a file unasked, and
buying a plan you already hold says what you hold and asks first (`--yes` to skip)."""
from __future__ import annotations

import json
import secrets

import pytest
from typer.testing import CliRunner

from ledger_node.config import get_settings
from ledger_node.wallets import create_wallet
from marketplace.cli.main import build_app


@pytest.fixture
def gridmart(market, monkeypatch):
    monkeypatch.setenv("GRIDMART_API_URL", market[0])
    monkeypatch.setenv("GRIDMART_WALLET_PASSWORD", "pw-of-the-cli")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(build_app(), list(args))

    return run


def test_redeem_never_replaces_a_file_unasked_and_a_second_purchase_asks(gridmart, unit, listed, tmp_path):
    _, product = listed("Feeder loads", "data", "month", 20)
    buyer, as_buyer = unit(("subscriber",), "Province Careful")
    wallet = f"careful-{secrets.token_hex(4)}"
    create_wallet(wallet, "pw-of-the-cli", buyer.key)
    licence = as_buyer.buy(product["product_id"], "month")["licence_id"]
    balance = as_buyer.points()["balance"]

    again = gridmart("buy", str(product["product_id"]), "--plan", "month", "-w", wallet)
    assert again.exit_code == 1 and "you already hold product" in str(again.exception) and "--yes" in str(again.exception)
    assert as_buyer.points()["balance"] == balance  # nothing was charged
    assert gridmart("buy", str(product["product_id"]), "--plan", "month", "--yes", "-w", wallet).exit_code == 0
    assert as_buyer.points()["balance"] == balance - 20

    shown = gridmart("licences", "-w", wallet).output  # a time plan: its end as a date, no "uses 0"
    assert f"product {product['product_id']}  until 20" in shown and "use(s)" not in shown and "uses 0" not in shown

    mine = tmp_path / "mine.bin"
    mine.write_bytes(b"my own work")
    refused = gridmart("redeem", licence, "--out", str(mine), "-w", wallet)
    assert refused.exit_code == 1 and "already exists: pass --force" in str(refused.exception)
    assert mine.read_bytes() == b"my own work"
    forced = gridmart("redeem", licence, "--out", str(mine), "--force", "-w", wallet)
    assert forced.exit_code == 0, forced.output
    assert mine.stat().st_size == 1000  # the product's bytes, checked against the certificate


def test_after_login_read_only_commands_need_no_password_until_the_session_ends(gridmart, unit, monkeypatch, tmp_path):
    member, _ = unit(("subscriber",), "Province Signed In")
    wallet = f"session-{secrets.token_hex(4)}"
    create_wallet(wallet, "pw-of-the-cli", member.key)
    assert gridmart("login", "-w", wallet).exit_code == 0
    monkeypatch.delenv("GRIDMART_WALLET_PASSWORD")  # from here on a password prompt would read nothing and fail
    points = gridmart("points", "-w", wallet)
    assert points.exit_code == 0 and "balance: 500" in points.output and "password" not in points.output
    assert gridmart("licences", "-w", wallet).exit_code == 0 and gridmart("job", "list", "-w", wallet).exit_code == 0
    assert gridmart("buy", "1", "--plan", "month", "-w", wallet).exit_code != 0  # signing still opens the wallet
    # a session the server no longer knows (e.g. restarted with a new key) is dropped: sign in again
    sessions = json.loads((get_settings().home / "sessions.json").read_text())
    for entry in sessions.values():
        entry["token"] = "forged." + entry["token"]
    (get_settings().home / "sessions.json").write_text(json.dumps(sessions))
    stale = gridmart("points", "-w", wallet)
    assert stale.exit_code != 0 and "password for wallet" in stale.output


def test_redeem_by_product_and_admit_by_wallet_name_say_what_to_fix(gridmart, unit, listed, monkeypatch):
    _, product = listed("Substation sketches", "data", "week", 10)
    buyer, as_buyer = unit(("subscriber",), "Province By Product")
    wallet = f"byproduct-{secrets.token_hex(4)}"
    create_wallet(wallet, "pw-of-the-cli", buyer.key)
    pid = str(product["product_id"])
    neither = gridmart("redeem", "-w", wallet)
    assert neither.exit_code == 1 and "or pass --product N" in str(neither.exception)
    none_held = gridmart("redeem", "--product", pid, "-w", wallet)
    assert none_held.exit_code == 1 and f"no active licence for product {pid}: buy one with `gridmart buy {pid}" \
        in str(none_held.exception)
    as_buyer.buy(product["product_id"], "week")
    redeemed = gridmart("redeem", "--product", pid, "-w", wallet)
    assert redeemed.exit_code == 0 and "delivery link" in redeemed.output, redeemed.output

    monkeypatch.delenv("GRIDMART_WALLET_PASSWORD")  # refused before any password prompt
    unknown = gridmart("member", "admit", "no-such-wallet", "--name", "X", "--identity", __file__)
    assert unknown.exit_code == 1 and "neither an Ethereum address" in str(unknown.exception)
    assert "password" not in unknown.output


def test_publish_shows_a_csvs_columns_and_chosen_rows_on_the_product_page(gridmart, unit, client, tmp_path):
    publisher, as_pub = unit(("publisher",), "Province Sampler")
    wallet = f"sampler-{secrets.token_hex(4)}"
    create_wallet(wallet, "pw-of-the-cli", publisher.key)
    data = tmp_path / "feeders.csv"
    data.write_text("feeder,kwh\nF1,12.5\nF2,8.0\nF3,9.1\n")
    out = gridmart("publish", str(data), "--title", "Feeder loads", "--kind", "data", "--encrypt", "--schema",
                   "--sample-rows", "2", "--json", "-w", wallet)
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output[out.output.index("{"):])
    page = client().product(listed["product_id"])
    assert page["schema"]["columns"] == ["feeder", "kwh"] and page["sample_rows"] == [["F1", "12.5"], ["F2", "8.0"]]
    bad = tmp_path / "empty.csv"
    bad.write_text("")
    refused = gridmart("publish", str(bad), "--title", "Nothing", "--schema", "-w", wallet)
    assert refused.exit_code == 1 and "has no CSV header row" in str(refused.exception)
