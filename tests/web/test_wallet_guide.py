"""#18 item 7: a page walks a member through putting the CLI wallet into MetaMask: the
chain to add (EIP-3085 wallet_addEthereumChain, answered by the wallet) and
`gridmart wallet export`, which prints the key only to a terminal unless told."""
from __future__ import annotations

from eth_account import Account
from playwright.sync_api import expect
from typer.testing import CliRunner

from ledger_node.wallets import create_wallet
from marketplace.cli.main import build_app

from .pages import message
from .test_product_pages import shots


def test_the_guide_adds_the_chain_to_the_wallet(open_as, site, screenshots):
    url, ctx = site
    page, wallet = open_as(Account.create())
    page.goto("/web/signin.html")
    page.click("text=Put it into MetaMask")
    page.wait_for_url("**/web/wallet.html")
    expect(page.locator("#chain-id")).to_have_text(f"{ctx.chain_id} (0x{ctx.chain_id:x})")  # once /config answered
    expect(page.locator("#rpc-url")).to_have_text(ctx.chain.w3.provider.endpoint_uri)  # the devnet on this machine
    assert "gridmart wallet export NAME" in page.text_content("main")
    page.click("#add-chain")
    expect(message(page)).to_contain_text("The chain is in your wallet")
    assert wallet.added_chains == [{"chainId": f"0x{ctx.chain_id:x}", "chainName": f"GridMart devnet ({ctx.chain_id})",
                                    "nativeCurrency": {"name": "Ether", "symbol": "ETH", "decimals": 18},
                                    "rpcUrls": [ctx.chain.w3.provider.endpoint_uri]}]
    shots(page, screenshots, "wallet-guide")


def test_wallet_export_prints_the_key_only_when_asked_off_a_terminal(monkeypatch):
    account = Account.create()
    create_wallet("exported", "pw-export", account.key)
    monkeypatch.setenv("GRIDMART_WALLET_PASSWORD", "pw-export")
    runner = CliRunner()
    refused = runner.invoke(build_app(), ["wallet", "export", "exported"])  # CliRunner's stdout is no terminal
    assert refused.exit_code == 1 and "pass --yes" in str(refused.exception)
    shown = runner.invoke(build_app(), ["wallet", "export", "exported", "--yes"])
    assert shown.exit_code == 0 and shown.stdout.strip().endswith(account.key.to_0x_hex())
    assert Account.from_key(shown.stdout.strip().splitlines()[-1]).address == account.address
