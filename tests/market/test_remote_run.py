"""Remote-run: an application product (a real analytics model) runs on the subscriber's posted data."""
from __future__ import annotations

import io
import tarfile

import pandas as pd
import pytest

from marketplace.client import ApiError


@pytest.fixture(scope="module")
def theft_bundle(tmp_path_factory):
    from analytics import registry
    from analytics.data.sgcc import generate_sgcc

    folder = tmp_path_factory.mktemp("theft-model")
    model_path, card = registry.train("theft-detection", folder / "model", size=400, seed=3)
    bundle = folder / "theft-detection.tar"
    with tarfile.open(bundle, "w") as tar:
        for f in model_path.parent.iterdir():
            tar.add(f, arcname=f.name)
    customers = folder / "customers.csv"
    generate_sgcc(25, seed=11).to_csv(customers, index=False)
    return bundle, customers


def test_subscriber_posts_data_and_gets_results(client, unit, theft_bundle, tmp_path):
    bundle, customers = theft_bundle
    operator = client()
    pub, as_pub = unit(("publisher",), "Province T")
    sub, as_sub = unit(("subscriber",), "Province U")
    listing = as_pub.publish(bundle, {"title": "Electricity-theft detection", "kind": "application",
                                      "sharing_mode": "remote-run", "runner": "theft-detection"}, encrypt=True)
    operator.approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", 10, 2)
    order = as_sub.buy(listing["product_id"], "per-use")
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    assert delivery["mode"] == "remote-run" and delivery["run_url"].endswith("/run")
    result = pd.read_csv(io.BytesIO(as_sub.run(delivery, customers)))
    assert list(result.columns) == ["CONS_NO", "theft_score", "theft_flag"]
    assert len(result) == 25 and result["theft_score"].between(0, 1).all()

    bad = tmp_path / "bad.csv"
    bad.write_text("meter,kwh\n1,2\n")
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    with pytest.raises(ApiError) as err:
        as_sub.run(delivery, bad)
    assert err.value.status == 400 and "rejected" in err.value.detail and "/tmp/" not in err.value.detail


def test_heat_map_as_a_remote_run_product(client, unit, tmp_path):
    import json
    import zipfile

    from analytics.heatmap import generate_city

    operator = client()
    pub, as_pub = unit(("publisher",), "Institute H")
    sub, as_sub = unit(("subscriber",), "City grid")
    settings = tmp_path / "heatmap.json"
    settings.write_text(json.dumps({"period": "daytype", "min_count": 5}))
    listing = as_pub.publish(settings, {"title": "Power heat map", "kind": "application",
                                        "sharing_mode": "remote-run", "runner": "heatmap"})
    operator.approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "week", 15)
    order = as_sub.buy(listing["product_id"], "week")
    tables = tmp_path / "city"
    generate_city(meters=3000, days=1, seed=4).save(tables, fmt="csv")
    posted = tmp_path / "city.zip"
    with zipfile.ZipFile(posted, "w", zipfile.ZIP_DEFLATED) as zf:  # 2.3 MiB: the posted body is capped (5 MiB here)
        for f in tables.iterdir():
            zf.write(f, f.name)
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    result = tmp_path / "maps.zip"
    result.write_bytes(as_sub.run(delivery, posted))
    names = zipfile.ZipFile(result).namelist()
    assert any(n.endswith(".html") for n in names) and sum(n.endswith(".png") for n in names) >= 2
    assert any("weakest" in n for n in names)


def test_an_application_bundle_is_never_handed_out(client, unit, theft_bundle, market):
    import httpx

    bundle, _ = theft_bundle
    pub, as_pub = unit(("publisher",))
    sub, as_sub = unit(("subscriber",))
    listing = as_pub.publish(bundle, {"title": "Private model", "kind": "application", "sharing_mode": "remote-run",
                                      "runner": "theft-detection"}, encrypt=True)
    client().approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "month", 10)
    order = as_sub.buy(listing["product_id"], "month")
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    assert "wrapped_key" not in delivery
    assert httpx.get(market[0] + delivery["url"]).status_code == 403
