"""The web download is checked in the browser (crypto.subtle) against the certificate on chain
(read by the wallet's eth_call, or the auditor endpoint when the wallet cannot), not the API's word."""
from __future__ import annotations

import hashlib
import os

from eth_account import Account
from playwright.sync_api import Page, expect
from sqlalchemy import text

from marketplace.client import MarketClient

from .pages import message, sign_in


def plain_product(site, operator, tmp_path, forge_sha256: bool = False):
    """A plain product on the shelf (per-use plan) and a subscriber; with `forge_sha256` the upload
    row's sha-256 is edited in the database before the listing is signed (so the chain certifies
    a sha-256 the bytes do not have)."""
    url, ctx = site
    as_op = MarketClient(url, operator)
    as_op.login()
    publisher, subscriber = Account.create(), Account.create()
    as_op.admit(publisher.address, "Web pub", b"identity of web pub", ["publisher"])
    as_op.admit(subscriber.address, "Web sub", b"identity of web sub", ["subscriber"])
    as_pub = MarketClient(url, publisher)
    as_pub.login()
    artifact = tmp_path / "plain.csv"
    artifact.write_bytes(os.urandom(20_000))
    if forge_sha256:
        up = as_pub.upload(artifact)
        with ctx.engine.begin() as conn:
            conn.execute(text("UPDATE upload SET sha256 = :s WHERE cid = :c"),
                         {"s": hashlib.sha256(b"forged").hexdigest(), "c": up["cid"]})
    listing = as_pub.publish(artifact, {"title": "Plain web data", "kind": "data"})
    as_op.approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", 10, 2)
    return subscriber, listing, artifact.read_bytes()


def redeem_for_download(page: Page, product_id: int) -> None:
    sign_in(page, f"/web/product.html?id={product_id}")
    page.get_by_role("button", name="Buy with points").click()
    expect(page.locator("#balance-after")).to_contain_text("490 points")
    page.get_by_role("link", name="redeem it in My licences").click()
    page.get_by_role("button", name="Sign voucher and redeem").click()
    expect(message(page)).to_have_text("Redeemed: your delivery link is ready.")


def test_download_is_verified_against_the_chain_by_the_wallet(open_as, site, operator, tmp_path):
    subscriber, listing, artifact = plain_product(site, operator, tmp_path)
    page, wallet = open_as(subscriber)
    redeem_for_download(page, listing["product_id"])
    page.get_by_role("button", name="Download and verify").click()
    expect(page.locator("#verify-result")).to_contain_text(
        f"matches certificate {listing['certificate_id']} read from the chain by your wallet")
    assert "eth_call" in wallet.requests
    with page.expect_download() as info:
        page.locator("#download").click()
    assert open(info.value.path(), "rb").read() == artifact


def test_without_eth_call_the_auditor_endpoint_is_used(open_as, site, operator, tmp_path):
    subscriber, listing, _ = plain_product(site, operator, tmp_path)
    page, wallet = open_as(subscriber)
    wallet.unsupported.add("eth_call")
    redeem_for_download(page, listing["product_id"])
    page.get_by_role("button", name="Download and verify").click()
    expect(page.locator("#verify-result")).to_contain_text("per the marketplace's auditor endpoint")


def test_bytes_that_fail_the_certificate_are_not_offered(open_as, site, operator, tmp_path):
    subscriber, listing, _ = plain_product(site, operator, tmp_path, forge_sha256=True)
    page, _ = open_as(subscriber)
    redeem_for_download(page, listing["product_id"])
    page.get_by_role("button", name="Download and verify").click()
    expect(message(page)).to_contain_text("cut short")
    expect(page.locator("#download")).to_have_count(0)


def test_a_product_whose_row_was_edited_is_flagged_and_not_sold(open_as, site, operator, tmp_path):
    subscriber, listing, _ = plain_product(site, operator, tmp_path)
    with site[1].engine.begin() as conn:
        conn.execute(text("UPDATE product SET title = 'Forged title' WHERE id = :p"), {"p": listing["product_id"]})
    page, _ = open_as(subscriber)
    sign_in(page, f"/web/product.html?id={listing['product_id']}")
    expect(page.locator("#not-verified")).to_contain_text("title differs from the certified metadata")
    expect(page.get_by_role("button", name="Buy with points")).to_have_count(0)
    page.goto("/")
    expect(page.get_by_text("Forged title")).to_have_count(0)
