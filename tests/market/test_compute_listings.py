"""#19 on the marketplace side, on the real marketplace: compute-only listings must be held by a
compute node, and bundle products hand out a jobs link, never a download or a legacy run.

(The market fixture configures no compute node: what needs one answers 503 and keeps nothing.)"""
from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from ledger_node.compute import bundle
from marketplace.client import ApiError
from marketplace.models import ComputeJob
from marketplace.services.listings import ListingMetadata


def _bundle_file(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    (root / bundle.MANIFEST).write_text(json.dumps({
        "format": bundle.FORMAT, "name": "echo", "version": "1", "entry_point": "main.py",
        "output": {"media_type": "text/plain"}}))
    (root / "main.py").write_text("import os, shutil\nshutil.copy(os.environ['GRIDMART_INPUT'], os.environ['GRIDMART_OUTPUT'])\n")
    path = tmp_path / "echo.tar.gz"
    path.write_bytes(bundle.pack(root))
    return path


def test_uploaded_data_cannot_be_listed_compute_only(unit, tmp_path):
    _, as_pub = unit(("publisher",), "Province C")
    data = tmp_path / "meters.csv"
    data.write_text("CONS_NO,kwh\n1,2\n")
    with pytest.raises(ApiError) as err:
        as_pub.publish(data, {"title": "Meter readings", "kind": "data", "sharing_mode": "compute-only",
                              "compute": {"node": "default"}})
    assert err.value.status == 400 and "must stay on your compute node" in err.value.detail


def test_compute_only_is_for_data_products():
    with pytest.raises(ValueError, match="compute-only is for data products"):
        ListingMetadata(title="t", kind="tool", sharing_mode="compute-only")


def test_listings_without_compute_terms_hash_as_before():
    meta = ListingMetadata(title="t", kind="data")
    assert "compute" not in meta.document()
    assert "compute" in ListingMetadata(title="t", kind="data", compute={"node": "zhejiang"}).document()


def test_registering_held_data_needs_a_known_node(unit):
    _, as_pub = unit(("publisher",), "Province D")
    with pytest.raises(ApiError) as err:
        as_pub._request("POST", "/uploads/held", json={"node": "zhejiang", "cid": "bafkreiabc"})
    assert err.value.status == 400 and "invalid CID 'bafkreiabc'" in err.value.detail
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    with pytest.raises(ApiError) as err:
        as_pub._request("POST", "/uploads/held", json={"node": "zhejiang", "cid": cid})
    assert err.value.status == 503 and "does not know" in err.value.detail and "GRIDMART_COMPUTE_NODES" in err.value.detail


def test_a_bundle_product_hands_out_a_jobs_link(client, unit, market, tmp_path):
    _, ctx = market
    _, as_pub = unit(("publisher",), "Institute B")
    _, as_sub = unit(("subscriber",), "Province B")
    listing = as_pub.publish(_bundle_file(tmp_path), {"title": "Echo", "kind": "application",
                                                      "sharing_mode": "remote-run"})
    client().approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", 10, 2)
    order = as_sub.buy(listing["product_id"], "per-use")
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    assert delivery["jobs_url"].endswith("/jobs") and "run_url" not in delivery
    with pytest.raises(ApiError) as err:  # not the legacy runner's path
        as_sub._request("POST", delivery["jobs_url"].removesuffix("/jobs") + "/run", files={"file": ("x", b"hi")})
    assert err.value.status == 400 and "/jobs" in err.value.detail
    with pytest.raises(ApiError) as err:  # no compute node configured here: refused, nothing kept
        as_sub._request("POST", delivery["jobs_url"], files={"input": ("in.txt", b"hello")})
    assert err.value.status == 503 and "compute node 'default'" in err.value.detail
    with Session(ctx.engine) as session:
        assert session.exec(select(ComputeJob).where(ComputeJob.product_id == listing["product_id"])).all() == []
