"""Remote-run in the browser: redeem with purpose "run", post data, get the product's result (a table, or maps)."""
from __future__ import annotations

import json
import re
import zipfile

from eth_account import Account
from playwright.sync_api import Page, expect

from marketplace.client import MarketClient
from tests.market.test_remote_run import theft_bundle  # noqa: F401 - a trained theft-detection bundle

from .pages import message, sign_in


def listed(url, operator, artifact, metadata, plan, price, uses=0):
    """A remote-run product put on the shelf through the API; returns (a subscriber account, product id)."""
    as_operator = MarketClient(url, operator)
    as_operator.login()
    publisher, subscriber = Account.create(), Account.create()
    as_operator.admit(publisher.address, "Publisher unit", b"identity of P", ["publisher"])
    as_operator.admit(subscriber.address, "Subscriber unit", b"identity of S", ["subscriber"])
    as_publisher = MarketClient(url, publisher)
    as_publisher.login()
    listing = as_publisher.publish(artifact, {**metadata, "kind": "application", "sharing_mode": "remote-run"})
    as_operator.approve(listing["certificate_id"])
    as_publisher.set_plan(listing["product_id"], plan, price, uses)
    return subscriber, listing["product_id"]


def buy_and_redeem_to_run(page: Page, product_id: int, balance_after: str) -> None:
    sign_in(page, f"/web/product.html?id={product_id}")
    page.get_by_role("button", name="Buy with points").click()
    expect(page.locator("#balance-after")).to_contain_text(balance_after)
    page.get_by_role("link", name="redeem it in My licences").click()
    page.get_by_label("Purpose of use").select_option("run")
    page.get_by_role("button", name="Sign voucher and redeem").click()
    expect(message(page)).to_have_text("Redeemed: your delivery link is ready.")
    expect(page.get_by_label("Purpose of use")).to_have_value("run")
    expect(page.locator("#download")).to_have_count(0)  # an application is run, not downloaded


def test_subscriber_runs_an_application_on_its_data(open_as, site, operator, theft_bundle, screenshots):  # noqa: F811
    bundle, customers = theft_bundle
    subscriber, product_id = listed(site[0], operator, bundle, {"title": "Electricity-theft detection",
                                                                "runner": "theft-detection"}, "per-use", 10, 2)
    page, _ = open_as(subscriber)
    buy_and_redeem_to_run(page, product_id, "490 points")

    run = page.locator("#run")
    run.get_by_label("Your data file").set_input_files(customers)
    run.get_by_role("button", name="Run the product on it").click()
    expect(message(page)).to_have_text("The product ran on your data.")
    expect(page.locator("#run-result pre")).to_contain_text("CONS_NO,theft_score,theft_flag")
    expect(page.locator("#run-result a")).to_have_attribute("download", "result.csv")
    page.screenshot(path=screenshots / "run-01-result.png", full_page=True)

    run.get_by_label("Your data file").set_input_files(
        {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"meter,kwh\n1,2\n"})
    run.get_by_role("button", name="Run the product on it").click()
    expect(message(page)).to_contain_text("rejected")
    expect(page.locator("#run-result")).to_be_empty()
    page.screenshot(path=screenshots / "run-02-bad-data.png", full_page=True)


def test_heat_map_viewer(open_as, site, operator, screenshots, tmp_path):
    from analytics.heatmap import generate_city

    settings = tmp_path / "heatmap.json"
    settings.write_text(json.dumps({"period": "hour", "min_count": 5}))  # 24 periods x every layer
    subscriber, product_id = listed(site[0], operator, settings, {"title": "Power heat map", "runner": "heatmap"},
                                    "week", 15)
    tables, posted = tmp_path / "city", tmp_path / "city.zip"
    generate_city(meters=3000, days=1, seed=4).save(tables, fmt="csv")
    with zipfile.ZipFile(posted, "w", zipfile.ZIP_DEFLATED) as zf:  # under the service's body limit
        for f in tables.iterdir():
            zf.write(f, f.name)

    page, _ = open_as(subscriber)
    buy_and_redeem_to_run(page, product_id, "485 points")
    run = page.locator("#run")
    run.get_by_label("Your data file").set_input_files(posted)
    run.get_by_role("button", name="Run the product on it").click()
    expect(message(page)).to_have_text("The product ran on your data.")
    # one map at a time (not every layer x period stacked), chosen by layer and period, decoded in the page
    viewer = page.locator(".heatmap-viewer")
    image = viewer.locator("figure img")
    expect(image).to_have_count(1)
    page.wait_for_function("() => document.querySelector('.heatmap-viewer img').naturalWidth > 100")
    first = image.get_attribute("alt")
    layers = viewer.locator(".layer")
    assert layers.count() >= 2 and layers.first.get_attribute("aria-pressed") == "true"
    layers.nth(1).click()
    expect(layers.nth(1)).to_have_attribute("aria-pressed", "true")
    assert image.get_attribute("alt") != first
    slider = viewer.locator("#map-period")
    before = page.text_content("#map-period-label")
    slider.press("End")  # the last period, from the keyboard
    assert page.text_content("#map-period-label") != before
    expect(viewer.locator("figcaption")).not_to_contain_text("not in the result")
    page.wait_for_function("() => document.querySelector('.heatmap-viewer img').naturalWidth > 100")
    expect(viewer.locator("table caption")).to_have_text("The weakest areas")
    assert viewer.locator("table tbody tr").count() >= 1
    assert page.evaluate("document.scrollingElement.scrollHeight") < 4000  # was ~11,600 px of thumbnails
    page.screenshot(path=screenshots / "run-03-heat-map.png", full_page=True)
