"""#18 item 7 in the browser: member names (address on hover), the catalogue's sort, facets,
paging and clickable tags, the product page's size, columns, sample rows, model card and usage,
the points history in words, and every page fitting a 390 px phone (screenshots at 1400 and 390 px)."""
from __future__ import annotations

import os
import re
import secrets

from eth_account import Account
from playwright.sync_api import Page, expect

from marketplace.client import MarketClient

from .pages import message, sign_in

PHONE, DESKTOP = 390, 1400


def shots(page: Page, screenshots, name: str) -> None:
    """The page at 1400 px and 390 px wide; at 390 px nothing may stick out sideways."""
    for width in (DESKTOP, PHONE):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)  # a layout pass
        page.screenshot(path=screenshots / f"pages-{name}-{width}.png", full_page=True)
    wide = page.evaluate("document.scrollingElement.scrollWidth")
    assert wide <= PHONE, f"{name}: {wide} px wide at {PHONE} px"
    page.set_viewport_size({"width": 1100, "height": 900})


def test_pages_read_like_a_product(open_as, site, operator, screenshots, tmp_path):
    url, _ = site
    tag = f"shop-{secrets.token_hex(3)}"
    as_op = MarketClient(url, operator)
    as_op.login()
    publisher, subscriber = Account.create(), Account.create()
    as_op.admit(publisher.address, f"Fujian Grid {tag}", b"identity of F", ["publisher"])
    as_op.admit(subscriber.address, f"Hunan Grid {tag}", b"identity of H", ["subscriber"])
    as_pub = MarketClient(url, publisher)
    as_pub.login()

    def listed(title, kind, price, **extra):
        f = tmp_path / f"{secrets.token_hex(4)}.bin"
        f.write_bytes(os.urandom(2000))
        out = as_pub.publish(f, {"title": title, "kind": kind, "tags": [tag, kind], **extra})
        as_op.approve(out["certificate_id"])
        as_pub.set_plan(out["product_id"], "month", price)
        return out["product_id"]

    tool = listed("Overload forecaster", "tool", 15, metrics={"auc": 0.9134, "recall": 0.8},
                  description="Transformer overload risk, a gradient-boosted model")
    listed("Charging-pile risk", "tool", 25)

    # the publisher publishes a CSV data product in the browser: its columns and two sample rows
    # are read from the file in the page and certified with the listing
    pa, _ = open_as(publisher)
    sign_in(pa, "/web/publish.html")
    csv = "feeder,day,peak_kw,note\nF-101,2026-01-01,812.5,\"cold, windy\"\nF-102,2026-01-01,640,\nF-103,2026-01-01,700,x\n"
    form = pa.locator("#publish")
    form.get_by_label("File").set_input_files({"name": "feeders.csv", "mimeType": "text/csv", "buffer": csv.encode()})
    form.get_by_label("Title").fill("Feeder peaks 2026")
    form.get_by_label("Description").fill("Daily peak load of every feeder")
    form.get_by_label("Kind").select_option("data")
    form.get_by_label("Tags").fill(f"{tag}, peaks")
    form.get_by_label("Sample rows to show").fill("2")
    form.get_by_label("Sample rows to show").dispatch_event("change")
    expect(pa.locator("#schema-preview")).to_have_text("Columns found: feeder, day, peak_kw, note — 2 sample row(s) will be shown.")
    form.get_by_label("encrypt it").set_checked(True)
    form.get_by_role("button", name=re.compile("publish")).click()
    expect(pa.locator("#published")).to_contain_text("waits for the operator's approval")
    shots(pa, screenshots, "publish")
    data = int(pa.locator("#published a").inner_text().split()[-1])
    certificate = int(pa.locator("#published").inner_text().split()[1])
    as_op.approve(certificate)
    as_pub.set_plan(data, "per-use", 30, 3)

    # the subscriber buys the data product and redeems it once (through the API: the story test does it in pages)
    as_sub = MarketClient(url, subscriber)
    as_sub.login()
    licence = as_sub.buy(data, "per-use")["licence_id"]
    as_sub.redeem(as_sub.sign_voucher(licence))

    # the catalogue: this tag's three products, facets with counts, names with the address on hover
    pb, _ = open_as(subscriber)
    sign_in(pb)
    pb.goto(f"/?tag={tag}&per_page=2")
    cards = pb.locator(".card")
    expect(cards).to_have_count(2)
    expect(pb.locator("#count")).to_have_text("3 products found — 1–2 shown.")
    expect(pb.locator("#page-of")).to_have_text("Page 1 of 2")
    kinds = pb.locator("[data-facet=kind]")
    expect(kinds.locator("[data-value=tool]")).to_have_text("tool (2)")
    expect(kinds.locator("[data-value=data]")).to_have_text("data (1)")
    expect(pb.locator("[data-facet=tag] [data-value=peaks]")).to_have_text("peaks (1)")
    by = cards.first.locator(".member")
    expect(by).to_have_text(f"Fujian Grid {tag}")
    expect(by).to_have_attribute("title", publisher.address)
    assert "0x" not in cards.first.inner_text()  # no raw address on a card
    shots(pb, screenshots, "catalogue")

    # sort: cheapest first, then most used; paging forward
    pb.get_by_label("Sort").select_option("price")
    expect(cards.first.locator("h2")).to_have_text("Overload forecaster")
    pb.get_by_role("button", name="Next page").click()
    expect(pb.locator("#page-of")).to_have_text("Page 2 of 2")
    expect(cards).to_have_count(1)
    expect(cards.first.locator("h2")).to_have_text("Feeder peaks 2026")  # the dearest (30)
    expect(pb).to_have_url(re.compile(r"page=2"))
    pb.get_by_label("Sort").select_option("most_used")
    expect(cards.first.locator("h2")).to_have_text("Feeder peaks 2026")
    expect(cards.first.locator(".usage")).to_have_text("1 licence sold · 1 use")

    # a facet filters (and says so), a card's tag filters by that tag
    kinds.locator("[data-value=tool]").click()
    expect(kinds.locator("[data-value=tool]")).to_have_attribute("aria-pressed", "true")
    expect(cards).to_have_count(2)
    expect(pb.locator("#count")).to_have_text("2 products found.")
    kinds.locator("[data-value=tool]").click()  # again: cleared
    expect(pb.locator("#count")).to_have_text("3 products found — 1–2 shown.")
    pb.locator(".card", has_text="Feeder peaks 2026").locator("a.tag-link[data-tag=peaks]").click()
    expect(pb.get_by_role("search").get_by_label("Tag")).to_have_value("peaks")
    expect(pb.locator(".card h2")).to_contain_text(["Feeder peaks 2026"])
    expect(pb).to_have_url(re.compile(r"tag=peaks"))
    shots(pb, screenshots, "catalogue-tag")

    # the data product's page: publisher by name, size, columns, sample rows, usage
    pb.goto(f"/web/product.html?id={data}")
    expect(pb.locator("dt:has-text('Publisher') + dd .member").first).to_have_text(f"Fujian Grid {tag}")
    expect(pb.locator("dt:has-text('Publisher') + dd .member").first).to_have_attribute("title", publisher.address)
    expect(pb.locator("#size")).to_have_text(f"{len(csv)} bytes (stored encrypted)")
    expect(pb.locator("#usage")).to_have_text("1 licence sold, 1 redemption")
    expect(pb.locator("#schema")).to_have_text("4 columns (csv): feeder, day, peak_kw, note")
    expect(pb.locator("#sample thead")).to_have_text(re.compile(r"feeder\s*day\s*peak_kw\s*note"))
    expect(pb.locator("#sample tbody tr")).to_have_count(2)
    expect(pb.locator("#sample tbody tr").first).to_have_text(re.compile(r"F-101\s*2026-01-01\s*812.5\s*cold, windy"))
    expect(pb.locator("#metrics-h")).to_have_count(0)
    shots(pb, screenshots, "product-data")
    pb.locator("a.tag-link", has_text="peaks").click()  # the page's tags lead to the catalogue
    expect(pb).to_have_url(f"{url}/?tag=peaks")
    expect(pb.locator(".card", has_text="Feeder peaks 2026")).to_have_count(1)

    # the tool's model card
    pb.goto(f"/web/product.html?id={tool}")
    expect(pb.locator("#metrics-h + table tbody")).to_have_text(re.compile(r"auc\s*0.913\s*recall\s*0.800"))
    expect(pb.locator("#schema-h")).to_have_count(0)
    shots(pb, screenshots, "product-tool")

    # licences and points: products by title, members by name, kinds and times
    pb.goto("/web/licences.html")
    row = pb.locator("#licences tbody tr").first
    expect(row.locator("td").first).to_have_text(f"Feeder peaks 2026 by Fujian Grid {tag}")
    shots(pb, screenshots, "licences")
    pb.goto("/web/points.html")
    rows = pb.locator("#points tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_text(re.compile(r"^20\d\d-\d\d-\d\dT.*admission grant\s*—\s*the marketplace\s*\+500"))
    expect(rows.nth(1)).to_have_text(re.compile(rf"purchase\s*Feeder peaks 2026\s*to Fujian Grid {tag}\s*-28"))
    expect(rows.nth(2)).to_have_text(re.compile(r"purchase fee\s*Feeder peaks 2026\s*to the marketplace's fee account\s*-2"))
    expect(rows.nth(1).locator(".member")).to_have_attribute("title", publisher.address)
    shots(pb, screenshots, "points")

    # the publisher's points: sale income from the subscriber, by name
    pa.goto("/web/points.html")
    expect(pa.locator("#points tbody tr").nth(1)).to_have_text(re.compile(rf"sale income\s*Feeder peaks 2026\s*from Hunan Grid {tag}\s*\+28"))

    # the operator's console names publishers
    op, _ = open_as(operator)
    sign_in(op, "/web/operator.html")
    listing = op.locator("#listing-table tr", has_text="Feeder peaks 2026")
    expect(listing.locator(".member")).to_have_text(f"Fujian Grid {tag}")
    shots(op, screenshots, "operator")

    # and every other page fits a phone too
    for path, name in [("/web/signin.html", "signin"), ("/web/jobs.html", "jobs"), ("/web/fl.html", "fl"),
                       ("/web/publish.html", "publish-form")]:
        pb.goto(path)
        pb.wait_for_load_state("networkidle")
        shots(pb, screenshots, name)
