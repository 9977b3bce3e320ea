"""Someone with write access to the database (a compromised host, a careless DBA) edits rows
with SQL: delivery, the CLI and the catalogue refuse or flag what the chain does not back,
and the consistency audit names each edit. Real app, real chain, real js-ipfs."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest
from eth_account import Account
from sqlalchemy import text

from ledger_node.audit import Ledger
from ledger_node.config import get_settings
from ledger_node.errors import IntegrityError
from marketplace.client import ApiError, MarketClient
from marketplace.services.consistency import audit_consistency

PASSWORD = "untrusted-db"


@contextmanager
def edited(ctx, sql: str, undo: str, **params):
    """Run `sql` on the live database; `undo` puts the rows back (the marketplace is shared)."""
    with ctx.engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount >= 1, sql
    try:
        yield
    finally:
        with ctx.engine.begin() as conn:
            conn.execute(text(undo), params)


def audit_failures(market, gm) -> list[str]:
    _, ctx = market
    return [c.name for c in audit_consistency(Ledger(gm.w3, gm.book), ctx.engine, ctx.store).checks if not c.passed]


@pytest.fixture
def two_products(client, unit, tmp_path):
    """A publisher's two plain products on the shelf (per-use plan on the first), and a subscriber who bought it."""
    _, as_pub = unit(("publisher",), "untrusted pub")
    sub, as_sub = unit(("subscriber",), "untrusted sub")
    out = []
    for name in ("mine", "other"):
        f = tmp_path / f"{name}.bin"
        f.write_bytes(os.urandom(5000))
        out.append({**as_pub.publish(f, {"title": f"Untrusted {name}", "kind": "data", "tags": ["untrusted"]}),
                    "bytes": f.read_bytes()})
        client().approve(out[-1]["certificate_id"])
    as_pub.set_plan(out[0]["product_id"], "per-use", 10, 3)
    order = as_sub.buy(out[0]["product_id"], "per-use")
    return {"mine": out[0], "other": out[1], "pub": as_pub, "sub": as_sub, "sub_account": sub, "order": order}


def test_changed_certificate_cid_never_delivers_another_products_bytes(market, gm, two_products, tmp_path):
    url, ctx = market
    mine, other, as_sub = two_products["mine"], two_products["other"], two_products["sub"]
    with edited(ctx, "UPDATE certificate SET cid = :o WHERE id = :c", "UPDATE certificate SET cid = :m WHERE id = :c",
                o=other["cid"], m=mine["cid"], c=mine["certificate_id"]):
        assert f"certificate {mine['certificate_id']}: cid changed" in audit_failures(market, gm)
        delivery = as_sub.redeem(as_sub.sign_voucher(two_products["order"]["licence_id"], nonce=1))
        out = tmp_path / "got.bin"
        if delivery["cid"] == mine["cid"]:  # the redemption read the certificate from the chain
            as_sub.download(delivery, out)
            assert out.read_bytes() == mine["bytes"]
        else:  # the token names the edited CID: the delivery endpoint refuses it
            with pytest.raises(ApiError) as err:
                as_sub.download(delivery, out)
            assert err.value.status == 409 and "chain certifies no approved version" in err.value.detail
            assert not out.exists() and not out.with_name("got.bin.part").exists()


def test_cli_checks_the_download_against_the_chain(market, devnet, two_products, tmp_path):
    url, ctx = market
    mine, other = two_products["mine"], two_products["other"]
    home = tmp_path / "home"
    (home / "keystores").mkdir(parents=True)
    (home / "keystores" / "sub.json").write_text(json.dumps(Account.encrypt(two_products["sub_account"].key, PASSWORD)))
    env = {**os.environ, "GRIDMART_HOME": str(home), "GRIDMART_API_URL": url, "GRIDMART_RPC_URL": devnet.url,
           "GRIDMART_DEPLOYMENTS_DIR": str(get_settings().deployments_dir), "GRIDMART_WALLET_PASSWORD": PASSWORD}
    out = tmp_path / "cli.bin"

    def redeem() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "marketplace.cli.main", "redeem", two_products["order"]["licence_id"],
                               "--out", str(out), "--force", "-w", "sub"], env=env, capture_output=True, text=True,
                              timeout=180)

    ok = redeem()
    assert ok.returncode == 0, ok.stderr
    assert out.read_bytes() == mine["bytes"] and f"certificate {mine['certificate_id']} on chain" in ok.stdout
    out.unlink()
    with edited(ctx, "UPDATE certificate SET cid = :o, sha256 = :s WHERE id = :c",
                "UPDATE certificate SET cid = :m, sha256 = :ms WHERE id = :c", o=other["cid"],
                s=hashlib.sha256(other["bytes"]).hexdigest(), m=mine["cid"], ms=hashlib.sha256(mine["bytes"]).hexdigest(),
                c=mine["certificate_id"]):
        tampered = redeem()
    if tampered.returncode == 0:  # the service read the certificate from the chain
        assert out.read_bytes() == mine["bytes"]
    else:
        assert "error:" in tampered.stderr and len(tampered.stderr.strip().splitlines()) == 1, tampered.stderr
        assert not out.exists() and not out.with_name("cli.bin.part").exists()
    env.pop("GRIDMART_RPC_URL")  # no chain: the API's word, with a warning
    env["GRIDMART_DEPLOYMENTS_DIR"] = str(tmp_path / "no-book")
    fallback = redeem()
    assert fallback.returncode == 0 and "warning: cannot read the certificate from the chain" in fallback.stderr


def test_bytes_that_do_not_hash_to_the_certificate_are_cut_short(market, gm, client, unit, tmp_path):
    """An edited upload sha-256 gets certified (the publisher signs what the API prepares): the
    plain stream of bytes that do not hash to the certificate is never finished."""
    url, ctx = market
    _, as_pub = unit(("publisher",), "misled pub")
    _, as_sub = unit(("subscriber",), "misled sub")
    f = tmp_path / "real.bin"
    f.write_bytes(os.urandom(4000))
    up = as_pub.upload(f)
    forged = hashlib.sha256(b"something else").hexdigest()
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE upload SET sha256 = :s WHERE cid = :c"), {"s": forged, "c": up["cid"]})
    product = as_pub.publish(f, {"title": "Misled", "kind": "data"})
    client().approve(product["certificate_id"])
    assert gm.products.certificate(product["certificate_id"]).sha256.hex() == forged
    as_pub.set_plan(product["product_id"], "per-use", 10, 2)
    order = as_sub.buy(product["product_id"], "per-use")
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], nonce=1))
    with pytest.raises(httpx.HTTPError):  # the server withholds the last piece and drops the connection
        httpx.get(url + delivery["url"]).raise_for_status()
    with pytest.raises(IntegrityError, match="cut short|not saved"):
        as_sub.download(delivery, tmp_path / "lie.bin")
    assert not (tmp_path / "lie.bin").exists() and not (tmp_path / "lie.bin.part").exists()
    assert (f"stored artifact of certificate {product['certificate_id']}: bytes differ from the certificate"
            in audit_failures(market, gm))


def test_withdrawn_product_row_does_not_put_it_back_on_the_shelf(market, gm, two_products):
    _, ctx = market
    other, as_pub = two_products["other"], two_products["pub"]
    as_pub.withdraw(other["certificate_id"])
    assert other["product_id"] not in [p["id"] for p in as_pub.catalogue()]
    with edited(ctx, "UPDATE product SET status = 'on-shelf' WHERE id = :p",
                "UPDATE product SET status = 'off-shelf' WHERE id = :p", p=other["product_id"]), \
         edited(ctx, "UPDATE certificate SET status = 'on-shelf' WHERE id = :c",
                "UPDATE certificate SET status = 'off-shelf' WHERE id = :c", c=other["certificate_id"]):
        assert other["product_id"] not in [p["id"] for p in as_pub.catalogue(tag="untrusted")]
        assert as_pub.product(other["product_id"])["status"] == "off-shelf"  # the chain's word
        found = audit_failures(market, gm)
        assert f"product {other['product_id']}: status changed" in found
        assert f"certificate {other['certificate_id']}: status changed" in found


@pytest.mark.parametrize("column,value", [("title", "Forged title"), ("description", "now free"),
                                          ("tags", "untrusted,free"), ("sharing_mode", "interface"),
                                          ("licence_terms", "public domain")])
def test_edited_shown_fields_are_flagged_and_hidden(column, value, market, gm, two_products):
    _, ctx = market
    mine, as_sub = two_products["mine"], two_products["sub"]
    pid = mine["product_id"]
    assert pid in [p["id"] for p in as_sub.catalogue(tag="untrusted")]
    with ctx.engine.connect() as conn:
        before = conn.execute(text(f"SELECT {column} FROM product WHERE id = :p"), {"p": pid}).scalar()
    with edited(ctx, f"UPDATE product SET {column} = :v WHERE id = :p", f"UPDATE product SET {column} = :b WHERE id = :p",
                v=value, b=before, p=pid):
        assert pid not in [p["id"] for p in as_sub.catalogue()]
        flagged = {p["id"]: p for p in as_sub.catalogue(on_shelf=False, publisher=mine_publisher(two_products))}[pid]
        assert not flagged["verified"]
        assert flagged["problems"] == [f"{column.replace('_', ' ')} differs from the certified metadata"]
        assert not as_sub.product(pid)["verified"]
        assert f"product {pid}: {column} changed" in audit_failures(market, gm)
    assert as_sub.product(pid)["verified"]


def mine_publisher(two_products) -> str:
    return two_products["pub"].account.address


def test_edited_plan_is_not_shown(market, gm, two_products):
    _, ctx = market
    pid, as_sub = two_products["mine"]["product_id"], two_products["sub"]
    with edited(ctx, "UPDATE plan SET price = 1 WHERE product_id = :p", "UPDATE plan SET price = 10 WHERE product_id = :p",
                p=pid):
        assert as_sub.product(pid)["plans"] == [{"kind": "per-use", "price": 10, "uses": 3}]
        assert f"plan {pid}/per-use: price changed" in audit_failures(market, gm)


def test_usage_proof_is_for_holder_auditor_and_operator(market, client, unit, listed):
    url, ctx = market
    _, product = listed("Proof product", "data", "month", 20)
    _, as_holder = unit(("subscriber",), "proof holder")
    _, as_other = unit(("subscriber",), "proof outsider")
    _, as_auditor = unit(("auditor",), "proof auditor")
    order = as_holder.buy(product["product_id"], "month")
    as_holder.redeem(as_holder.sign_voucher(order["licence_id"], nonce=7))
    with ctx.engine.connect() as conn:
        rid = conn.execute(text("SELECT id FROM redemption WHERE licence_id = :l"), {"l": order["licence_id"]}).scalar()
    deadline = time.monotonic() + 30
    while True:
        try:
            proof = as_holder._request("GET", f"/usage/{rid}/proof")
            break
        except ApiError as exc:
            assert exc.status == 404 and time.monotonic() < deadline, exc
            time.sleep(0.3)
    assert json.loads(proof["record"])["holder"] == as_holder.account.address
    assert as_auditor._request("GET", f"/usage/{rid}/proof") == proof
    assert client()._request("GET", f"/usage/{rid}/proof") == proof
    with pytest.raises(ApiError) as err:
        as_other._request("GET", f"/usage/{rid}/proof")
    assert err.value.status == 404 and "of yours" in err.value.detail  # as for an id that does not exist
    assert httpx.get(f"{url}/usage/{rid}/proof").status_code == 401


@pytest.mark.parametrize("method,path,body", [
    ("GET", f"/products/{2 ** 63}", None), ("GET", "/products/-1", None), ("GET", f"/products/{2 ** 32}", None),
    ("GET", f"/usage/{2 ** 63}/proof", None), ("GET", "/usage/-5/proof", None),
    ("POST", "/tx/prepare", {"action": "set_plan", "product_id": 1, "plan": "per-use", "price": 70000, "uses": 1}),
    ("POST", "/tx/prepare", {"action": "set_plan", "product_id": 1, "plan": "per-use", "price": 5, "uses": 2 ** 20}),
    ("POST", "/tx/prepare", {"action": "purchase", "product_id": 2 ** 63, "plan": "month"}),
    ("POST", "/tx/prepare", {"action": "purchase", "product_id": -3, "plan": "month"}),
    ("POST", "/tx/prepare", {"action": "fund_task", "task_id": 2 ** 256, "amount": 1}),
    ("POST", "/listings/prepare", {"cid": "x", "metadata": {"title": "t", "kind": "data"}, "previous": 2 ** 63}),
])
def test_out_of_range_integers_are_4xx(method, path, body, market, client):
    url, _ = market
    token = client().token
    r = httpx.request(method, url + path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422, r.text
    assert "less than or equal" in r.text or "greater than or equal" in r.text


def test_ranges_are_in_the_schema(market):
    url, _ = market
    schema = httpx.get(url + "/openapi.json").json()
    product = next(p for p in schema["paths"]["/products/{product_id}"]["get"]["parameters"] if p["name"] == "product_id")
    assert product["schema"]["minimum"] == 1 and product["schema"]["maximum"] == 2 ** 32 - 1
    prepare = schema["components"]["schemas"]["PrepareTx"]["properties"]
    assert prepare["price"]["maximum"] == 2 ** 16 - 1 and prepare["uses"]["maximum"] == 2 ** 16 - 1


def test_remote_run_takes_its_runner_from_certified_metadata_only(market, client, unit, tmp_path):
    """An edited runner name in the index (after the link was issued) is refused, not run."""
    _, ctx = market
    _, as_pub = unit(("publisher",), "run pub")
    _, as_sub = unit(("subscriber",), "run sub")
    bundle = tmp_path / "app.tar"
    bundle.write_bytes(os.urandom(2000))
    listing = as_pub.publish(bundle, {"title": "Untrusted app", "kind": "application", "sharing_mode": "remote-run",
                                      "runner": "theft-detection"})
    client().approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", 10, 2)
    order = as_sub.buy(listing["product_id"], "per-use")
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    (tmp_path / "data.csv").write_text("CONS_NO\n1\n")
    with edited(ctx, "UPDATE certificate SET metadata_json = replace(metadata_json, 'theft-detection', 'heatmap') "
                     "WHERE id = :c", "UPDATE certificate SET metadata_json = replace(metadata_json, 'heatmap', "
                     "'theft-detection') WHERE id = :c", c=listing["certificate_id"]):
        with pytest.raises(ApiError) as err:
            as_sub.run(delivery, tmp_path / "data.csv")
    assert err.value.status == 409 and "does not hash to its certified hash" in err.value.detail
