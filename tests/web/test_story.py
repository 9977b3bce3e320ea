"""The story in a real browser: admit, publish encrypted, approve, price, buy, redeem three times, fourth refused."""
from __future__ import annotations

import hashlib
import os
import re

import httpx
from eth_account import Account
from playwright.sync_api import expect

from ledger_node.content.encryption import decrypt_stream, unwrap_key

from .pages import admit, message, sign_in


def test_the_story_in_the_browser(open_as, site, operator, screenshots):
    url, _ = site
    shot = lambda page, name: page.screenshot(path=screenshots / f"{name}.png", full_page=True)  # noqa: E731
    a, b = Account.create(), Account.create()

    # the operator signs in and admits A (publisher) and B (subscriber)
    op, _ = open_as(operator)
    op.goto("/web/operator.html")
    expect(message(op)).to_contain_text("Please sign in with your wallet")
    op.goto("/web/signin.html")
    shot(op, "01-signin")
    sign_in(op, "/web/operator.html")
    expect(op).to_have_url(f"{url}/web/operator.html")
    admit(op, a.address, "Province A", {"publisher"})
    admit(op, b.address, "Province B", {"subscriber"})
    expect(op.locator("#member-table")).to_contain_text("Province B")
    shot(op, "02-operator-admitted")

    # A publishes an encrypted product: upload with progress, listing signed in the wallet (EIP-712)
    pa, wallet_a = open_as(a)
    sign_in(pa, "/web/publish.html")
    artifact = os.urandom(700_000)
    form = pa.locator("#publish")
    form.get_by_label("File").set_input_files({"name": "load-profiles.csv", "mimeType": "text/csv", "buffer": artifact})
    form.get_by_label("Title").fill("Load profiles 2026")
    form.get_by_label("Description").fill("15-minute load profiles of 2026, by feeder")
    form.get_by_label("Kind").select_option("data")
    form.get_by_label("Sharing mode").select_option("download")
    tag = f"web-{a.address[2:10].lower()}"  # the chain is shared with other tests: find ours
    form.get_by_label("Tags").fill(f"load, SGCC, {tag.upper()}")
    form.get_by_role("button", name=re.compile("publish")).click()
    expect(pa.locator("#published")).to_contain_text("waits for the operator's approval")
    expect(pa.locator("#progress")).to_have_attribute("value", "100")
    assert wallet_a.requests.count("eth_signTypedData_v4") == 1
    shot(pa, "03-published")
    cid = pa.locator("#result code").first.inner_text()
    product_link = pa.locator("#published a")
    product_id = int(product_link.inner_text().split()[-1])
    certificate = int(pa.locator("#published").inner_text().split()[1])

    # the operator approves it
    op.reload()
    op.locator(f"button[data-action=approve][data-certificate='{certificate}']").click()
    expect(message(op)).to_have_text(f"Certificate {certificate} is now on the shelf.")
    shot(op, "04-operator-approved")

    # A sets a 3-use plan priced 30 (a transaction signed in the wallet)
    product_link.click()
    plan_form = pa.locator("#set-plan")
    plan_form.get_by_label("Plan").select_option("per-use")
    plan_form.get_by_label("Price (points)").fill("30")
    plan_form.get_by_label("Uses (per-use only)").fill("3")
    plan_form.get_by_role("button").click()
    expect(message(pa)).to_have_text("The plan is set.")
    expect(pa.locator("#plans-h + table tbody")).to_have_text(re.compile(r"per-use\s*30\s*3"))
    assert wallet_a.requests.count("eth_signTransaction") == 1

    # B finds it in the catalogue and opens its page: certificate and version history
    pb, wallet_b = open_as(b)
    sign_in(pb)
    search = pb.get_by_role("search")
    search.get_by_label("Tag").fill(tag)
    search.get_by_role("button", name="Search").click()
    expect(pb.locator(".card")).to_have_count(1)
    shot(pb, "05-catalogue")
    pb.get_by_role("link", name="Load profiles 2026").click()
    expect(pb.locator("code.cid")).to_have_text(cid)
    expect(pb.locator("code.sha")).to_contain_text(hashlib.sha256(artifact).hexdigest())
    expect(pb.locator("dt:has-text('Block time') + dd")).to_have_text(re.compile(r"^20\d\d-"))
    expect(pb.locator("#versions-h + table tbody tr")).to_have_count(1)
    pb.get_by_role("button", name="Verify on chain").click()
    expect(pb.locator("#audit .passed")).to_contain_text("Verified: all")
    expect(pb.locator("#audit li").first).to_contain_text("✔")

    # B buys with a wallet like MetaMask, which cannot hand over a signed transaction, only send it:
    # a rejected signature is said in words; then the wallet sends the purchase itself and the
    # marketplace checks it by hash; balance 500 -> 470
    expect(pb.locator("#balance-before")).to_have_text("500 points")
    buy = pb.get_by_role("button", name="Buy with points")
    wallet_b.unsupported.add("eth_signTransaction")
    wallet_b.reject_next = True
    buy.click()
    expect(message(pb)).to_have_text("You rejected the request in your wallet: nothing was signed")
    buy.click()
    expect(pb.locator("#balance-after")).to_contain_text("Your balance after: 470 points (paid 30, of which 2")
    assert wallet_b.requests.count("eth_sendTransaction") == 2  # the rejected one and the purchase
    shot(pb, "06-bought")

    # B redeems three times: each a Redeem voucher signed in the wallet, then a working delivery link
    pb.get_by_role("link", name="redeem it in My licences").click()
    redeem = pb.get_by_role("button", name="Sign voucher and redeem")
    for uses_left in (2, 1, 0):
        redeem.click()
        expect(message(pb)).to_have_text("Redeemed: your delivery link is ready.")
        expect(pb.locator("#licences tbody td").nth(3)).to_have_text(str(uses_left))
        link = pb.locator("#download")
        wrapped = pb.locator("#delivery details code").text_content()
        ciphertext = httpx.get(url + link.get_attribute("href"), timeout=30).content
        key = unwrap_key(bytes.fromhex(wrapped), b.key)
        assert b"".join(decrypt_stream([ciphertext], key)) == artifact
        shot(pb, f"07-redeemed-{3 - uses_left}")

    # the fourth is refused, in words
    redeem.click()
    expect(message(pb)).to_have_text("Licence used up or expired: buy the plan again")
    expect(pb.locator("#licences tbody td").nth(4)).to_have_text("used up or expired")
    shot(pb, "08-fourth-refused")
    assert wallet_b.requests.count("eth_signTypedData_v4") == 4

    # points history, and the operator's fee income
    pb.get_by_role("link", name="Points").click()
    expect(pb.locator("#balance")).to_have_text("470 points")
    expect(pb.locator("#points tbody tr")).to_have_count(3)
    expect(pb.locator("#points tbody")).to_contain_text("-28")
    shot(pb, "09-points")
    op.reload()
    expect(op.locator("#fee-income")).not_to_have_text("0 points")
    shot(op, "10-operator-income")

    # the operator withdraws it: its page says it cannot be bought
    op.locator(f"button[data-action=withdraw][data-certificate='{certificate}']").click()
    expect(message(op)).to_have_text(f"Certificate {certificate} is now off the shelf.")
    pb.goto(f"/web/product.html?id={product_id}")
    expect(pb.locator("#not-on-sale")).to_have_text("This product is off the shelf: it cannot be bought now.")
    expect(pb.get_by_role("button", name="Buy with points")).to_have_count(0)
    shot(pb, "11-off-shelf")
