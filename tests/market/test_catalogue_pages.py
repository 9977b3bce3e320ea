"""#18 item 7: the catalogue, product page, licences and points read like a product: member
names next to addresses, sort / paging / facets, size, schema, sample rows, model metrics,
usage counts, and a points history with kind, product and time."""
from __future__ import annotations

import os
import secrets

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ledger_node.wallets import create_wallet
from marketplace.cli.main import build_app
from marketplace.client import ApiError
from marketplace.services.catalogue import PageListingMetadata


def _publish(as_pub, tmp_path, title: str, kind: str, tag: str, body: bytes, **extra) -> dict:
    f = tmp_path / f"{secrets.token_hex(4)}.csv"
    f.write_bytes(body)
    return as_pub.publish(f, {"title": title, "kind": kind, "tags": [tag, f"{kind}-only"], **extra})


@pytest.fixture
def shelf(client, unit, tmp_path):
    """Three products of one fresh publisher under one fresh tag: a CSV data product with its
    schema and sample rows (price 40), a tool with model-card metrics (price 10), a data
    product without a plan; the first bought twice and redeemed once."""
    tag = f"pages-{secrets.token_hex(4)}"
    pub, as_pub = unit(("publisher",), f"Anhui Grid {tag}")
    csv = b"meter_id,day,kwh\nM1,2026-01-01,12.5\nM2,2026-01-01,8.25\n" + tag.encode() + b",2026-01-02,1\n"
    data = _publish(as_pub, tmp_path, "Meter readings", "data", tag, csv,
                    schema={"format": "csv", "columns": ["meter_id", "day", "kwh"]},
                    sample_rows=[["M1", "2026-01-01", "12.5"], ["M2", "2026-01-01", "8.25"]])
    tool = _publish(as_pub, tmp_path, "Theft detector", "tool", tag, os.urandom(300),
                    metrics={"auc": 0.91, "recall": 0.8})
    bare = _publish(as_pub, tmp_path, "Unpriced archive", "data", tag, os.urandom(200))
    for p in (data, tool, bare):
        client().approve(p["certificate_id"])
    as_pub.set_plan(data["product_id"], "per-use", 40, 3)
    as_pub.set_plan(tool["product_id"], "month", 10)
    buyers = [unit(("subscriber",), f"Buyer {n} {tag}") for n in (1, 2)]
    licences = [as_b.buy(data["product_id"], "per-use")["licence_id"] for _, as_b in buyers]
    buyers[0][1].redeem(buyers[0][1].sign_voucher(licences[0]))
    return {"tag": tag, "publisher": pub, "as_pub": as_pub, "data": data["product_id"], "tool": tool["product_id"],
            "bare": bare["product_id"], "buyers": buyers, "size": len(csv)}


def test_catalogue_sorts_pages_counts_facets_and_names_publishers(market, client, shelf):
    url, _ = market
    tag, as_sub = shelf["tag"], shelf["buyers"][0][1]
    ids = lambda items: [p["id"] for p in items]  # noqa: E731

    assert ids(as_sub.catalogue(tag=tag)) == sorted([shelf["data"], shelf["tool"], shelf["bare"]])  # as before: by id
    assert ids(as_sub.catalogue(tag=tag, sort="price")) == [shelf["tool"], shelf["data"], shelf["bare"]]  # no plan: last
    assert ids(as_sub.catalogue(tag=tag, sort="newest")) == [shelf["bare"], shelf["tool"], shelf["data"]]
    used = as_sub.catalogue(tag=tag, sort="most_used")
    assert ids(used)[0] == shelf["data"] and used[0]["licences_sold"] == 2 and used[0]["redemptions"] == 1
    assert {p["publisher_name"] for p in used} == {f"Anhui Grid {tag}"}
    assert {p["publisher"] for p in used} == {shelf["publisher"].address}  # the address stays beside the name

    r = httpx.get(f"{url}/products", params={"tag": tag, "sort": "price", "page": 2, "per_page": 2})
    assert r.status_code == 200 and ids(r.json()) == [shelf["bare"]]
    assert (r.headers["X-Total-Count"], r.headers["X-Page"], r.headers["X-Per-Page"]) == ("3", "2", "2")
    assert httpx.get(f"{url}/products", params={"tag": tag, "page": 9}).json() == []  # past the end: empty

    facets = httpx.get(f"{url}/products/facets", params={"tag": tag}).json()
    assert facets["total"] == 3 and facets["kind"] == {"data": 2, "tool": 1}
    assert facets["tags"][tag] == 3 and facets["tags"]["data-only"] == 2 and facets["tags"]["tool-only"] == 1
    chosen = httpx.get(f"{url}/products/facets", params={"tag": tag, "kind": "tool"}).json()
    assert chosen["total"] == 1 and chosen["kind"] == {"data": 2, "tool": 1}  # the other kinds still counted
    assert chosen["tags"] == {tag: 1, "tool-only": 1}

    for params, words in [({"sort": "cheapest"}, "sort"), ({"page": 0}, "page"), ({"per_page": 101}, "per_page"),
                          ({"per_page": "ten"}, "per_page")]:
        bad = httpx.get(f"{url}/products", params=params)
        assert bad.status_code == 422 and words in bad.json()["detail"], bad.text
    bad = httpx.get(f"{url}/products", params={"publisher": "0x123"})
    assert bad.status_code == 400 and "is not a wallet address" in bad.json()["detail"]


def test_product_page_shows_size_schema_samples_metrics_and_usage(client, shelf):
    as_sub = shelf["buyers"][0][1]
    data = as_sub.product(shelf["data"])
    assert data["size"] == shelf["size"] and data["encrypted"] is False
    assert data["schema"] == {"format": "csv", "columns": ["meter_id", "day", "kwh"]}
    assert data["sample_rows"][0] == ["M1", "2026-01-01", "12.5"]
    assert (data["licences_sold"], data["redemptions"]) == (2, 1)
    assert data["publisher_name"] == f"Anhui Grid {shelf['tag']}" and data["versions"][0]["publisher_name"] == data["publisher_name"]
    assert data["metrics"] is None and data["verified"]  # the extra fields are certified with the rest
    tool = as_sub.product(shelf["tool"])
    assert tool["metrics"] == {"auc": 0.91, "recall": 0.8} and tool["schema"] is None and tool["sample_rows"] is None
    bare = as_sub.product(shelf["bare"])
    assert (bare["licences_sold"], bare["redemptions"], bare["schema"]) == (0, 0, None)


def test_sample_rows_are_bounded(shelf, tmp_path):
    for extra, words in [({"sample_rows": [["x"]] * 11}, "sample_rows"),
                         ({"sample_rows": [["x" * 201]]}, "200 characters"),
                         ({"sample_rows": [["y" * 200] * 100]}, "16 kB"),
                         ({"schema": {"columns": ["c"] * 201}}, "columns")]:
        with pytest.raises(ApiError) as err:
            _publish(shelf["as_pub"], tmp_path, "Too much", "data", shelf["tag"], b"a\n1\n", **extra)
        assert err.value.status == 422 and words in err.value.detail, err.value.detail
    # numbers JSON cannot carry (a client's encoder refuses them already; a raw body is refused too)
    with pytest.raises(ValidationError, match="finite number"):
        PageListingMetadata(title="t", kind="tool", metrics={"auc": float("nan")})
    with pytest.raises(ValidationError, match="finite number"):
        PageListingMetadata(title="t", kind="data", sample_rows=[[float("inf")]])


def test_points_and_licences_name_kind_product_time_and_members(market, shelf, monkeypatch):
    (buyer, as_buyer), title = shelf["buyers"][0], "Meter readings"
    history = as_buyer.points()["history"]
    assert [h["kind"] for h in history] == ["admission grant", "purchase", "purchase fee"]
    assert [h["delta"] for h in history] == [500, -38, -2]  # 94 % to the publisher, 6 % fee (rounded)
    assert all(h["time"] and h["time"] > 1_700_000_000 for h in history)
    assert [h["product_title"] for h in history] == [None, title, title]
    assert history[1]["product_id"] == shelf["data"] and history[1]["to_name"] == f"Anhui Grid {shelf['tag']}"
    assert history[2]["to_name"] == "the marketplace's fee account"

    sales = shelf["as_pub"].points()["history"]
    assert [h["kind"] for h in sales] == ["admission grant", "sale income", "sale income"]
    assert sales[1]["from_name"] == f"Buyer 1 {shelf['tag']}" and sales[1]["product_id"] == shelf["data"]

    (lic,) = as_buyer.licences()
    assert lic["product_title"] == title and lic["publisher_name"] == f"Anhui Grid {shelf['tag']}"
    assert lic["publisher"] == shelf["publisher"].address

    # the CLI prints time, kind and product on each row
    monkeypatch.setenv("GRIDMART_API_URL", market[0])
    monkeypatch.setenv("GRIDMART_WALLET_PASSWORD", "pw-of-the-cli")
    wallet = f"pages-{secrets.token_hex(4)}"
    create_wallet(wallet, "pw-of-the-cli", buyer.key)
    shown = CliRunner().invoke(build_app(), ["points", "-w", wallet])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "balance: 460"
    assert "admission grant" in lines[1] and "+500" in lines[1] and lines[1].strip().startswith("20")
    assert "purchase" in lines[2] and f"product {shelf['data']} {title}" in lines[2] and "-38" in lines[2]
