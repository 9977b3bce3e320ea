"""Consistency audit of the live marketplace's database against the chain; tampering with a copy is caught and named."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import sqlite3
import time

import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from ledger_node.audit import audit_product, audit_usage
from ledger_node.content.cid import parse
from ledger_node.content.embedded import EmbeddedStore
from marketplace.api.audit import router
from marketplace.cli.audit import app as audit_cli
from marketplace.client import MarketClient
from marketplace.db import make_engine
from marketplace.services import auth, tokens
from marketplace.services.consistency import audit_consistency
from marketplace.services.errors import ServiceError


@pytest.fixture(scope="module")
def story(own_market, tmp_path_factory):
    """A publisher with two plain products and an encrypted one, a subscriber who bought and
    redeemed 3 times, records anchored and indexed."""
    url, ctx = own_market["url"], own_market["ctx"]
    as_op = MarketClient(url, own_market["operator"])
    as_op.login()
    as_a, as_b = MarketClient(url, Account.create()), MarketClient(url, Account.create())
    as_op.admit(as_a.account.address, "Audit A", b"audit a", ["publisher"])
    as_op.admit(as_b.account.address, "Audit B", b"audit b", ["subscriber"])
    as_a.login()
    as_b.login()
    folder = tmp_path_factory.mktemp("audit-story")
    published = []
    for n in range(2):
        artifact = folder / f"a{n}.csv"
        artifact.write_bytes(os.urandom(3000))
        published.append(as_a.publish(artifact, {"title": f"Audit product {n}", "kind": "data", "tags": ["audit"]}))
        as_op.approve(published[-1]["certificate_id"])
    (folder / "e.csv").write_bytes(os.urandom(3000))
    encrypted = as_a.publish(folder / "e.csv", {"title": "Audit sealed", "kind": "data"}, encrypt=True)
    as_op.approve(encrypted["certificate_id"])
    product = published[0]["product_id"]
    as_a.set_plan(product, "per-use", 30, 3)
    order = as_b.buy(product, "per-use")
    for n in range(3):
        as_b.redeem(as_b.sign_voucher(order["licence_id"], nonce=n))
    deadline = time.monotonic() + 30
    with ctx.engine.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM redemption WHERE licence_id = :l AND batch_id IS NULL"),
                           {"l": order["licence_id"]}).scalar():
            assert time.monotonic() < deadline, "usage records were not anchored"
            time.sleep(0.2)
    ctx.indexer.sync()
    with ctx.engine.connect() as conn:
        rid = conn.execute(text("SELECT max(id) FROM redemption WHERE licence_id = :l"), {"l": order["licence_id"]}).scalar()
    return {"ctx": ctx, "ledger": own_market["ledger"], "book_dir": own_market["book_dir"], "product": product, "certs": [p["certificate_id"] for p in published],
            "publisher": as_a.account.address, "subscriber": as_b.account.address,
            "cids": [p["cid"] for p in published], "encrypted": encrypted,
            "licence": order["licence_id"], "artifact": (folder / "a0.csv").read_bytes(),
            "proof": as_op._request("GET", f"/usage/{rid}/proof")}


@pytest.fixture
def ledger(story):
    return story["ledger"]


@pytest.fixture
def db(story, tmp_path):
    """A consistent snapshot of the marketplace database (SQLite online backup) to tamper with."""
    url = story["ctx"].settings.database_url
    copy = tmp_path / "copy.db"
    src, dst = sqlite3.connect(url.removeprefix("sqlite:///")), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    return make_engine(f"sqlite:///{copy}")


def tamper(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount >= 1


def failures(ledger, engine, store=None) -> list[str]:
    return [c.name for c in audit_consistency(ledger, engine, store).checks if not c.passed]


#: (what is edited, SQL, the failed check that names it); {p} product, {c} its certificate,
#: {cid} its CID, {a} publisher, {b} subscriber, {l} licence, {e}/{ecid} the encrypted product
EDITS = [
    ("member name", "UPDATE member SET name = 'x' WHERE address = :a", "member {a}: name changed"),
    ("member roles", "UPDATE member SET roles = 7 WHERE address = :b", "member {b}: roles changed"),
    ("member status", "UPDATE member SET status = 'suspended' WHERE address = :b", "member {b}: status changed"),
    ("member identity", "UPDATE member SET identity_hash = 'ab' WHERE address = :a", "member {a}: identity_hash changed"),
    ("points moved", "UPDATE pointmovement SET amount = amount + 100 WHERE recipient = :b", "point_movement *: amount changed"),
    ("certificate CID", "UPDATE certificate SET cid = :cid2 WHERE id = :c", "certificate {c}: cid changed"),
    ("certificate sha-256", "UPDATE certificate SET sha256 = :zero WHERE id = :c", "certificate {c}: sha256 changed"),
    ("certificate status", "UPDATE certificate SET status = 'off-shelf' WHERE id = :c", "certificate {c}: status changed"),
    ("certificate metadata", "UPDATE certificate SET metadata_json = replace(metadata_json, 'Audit product', 'Forged') "
                             "WHERE id = :c", "certificate {c}: metadata does not match its certified hash"),
    ("certificate metadata removed", "UPDATE certificate SET metadata_json = '{}' WHERE id = :c",
     "certificate {c}: listing metadata missing"),
    ("title", "UPDATE product SET title = 'Forged' WHERE id = :p", "product {p}: title changed"),
    ("description", "UPDATE product SET description = 'better data' WHERE id = :p", "product {p}: description changed"),
    ("tags", "UPDATE product SET tags = 'audit,free' WHERE id = :p", "product {p}: tags changed"),
    ("sharing mode", "UPDATE product SET sharing_mode = 'interface' WHERE id = :p", "product {p}: sharing_mode changed"),
    ("licence terms", "UPDATE product SET licence_terms = 'public domain' WHERE id = :p", "product {p}: licence_terms changed"),
    ("product status (withdrawn back on shelf)", "UPDATE product SET status = 'pending' WHERE id = :p",
     "product {p}: status changed"),
    ("product kind", "UPDATE product SET kind = 'tool' WHERE id = :p", "product {p}: kind changed"),
    ("latest version", "UPDATE product SET latest_certificate = :c2 WHERE id = :p", "product {p}: latest_certificate changed"),
    ("upload sha-256", "UPDATE upload SET sha256 = :zero WHERE cid = :cid", "upload of certificate {c}: sha256 changed"),
    ("upload CID", "UPDATE upload SET cid = 'bafkforged' WHERE cid = :cid", "upload of certificate {c}: missing"),
    ("upload size", "UPDATE upload SET size = size + 1 WHERE cid = :cid", "stored artifact of certificate {c}: size changed"),
    ("encrypted upload size", "UPDATE upload SET size = size - 1 WHERE cid = :ecid",
     "stored artifact of certificate {e}: size changed"),
    ("upload encryption", "UPDATE upload SET encrypted = 1 WHERE cid = :cid",
     "stored artifact of certificate {c}: encryption changed"),
    ("plan price", "UPDATE plan SET price = 1 WHERE product_id = :p", "plan {p}/per-use: price changed"),
    ("plan uses", "UPDATE plan SET uses = 300 WHERE product_id = :p", "plan {p}/per-use: uses changed"),
    ("licence expiry", "UPDATE licence SET expires_at = 4102444800 WHERE id = :l", "licence {l}: expires_at changed"),
    ("licence uses", "UPDATE licence SET uses_left = 3 WHERE id = :l", "licence {l}: uses_left changed"),
    ("licence revoked", "UPDATE licence SET revoked = 1 WHERE id = :l", "licence {l}: revoked changed"),
    ("licence holder", "UPDATE licence SET holder = :a WHERE id = :l", "licence {l}: holder changed"),
    ("purchase fee", "UPDATE purchase SET fee = 0 WHERE licence_id = :l", "purchase *: fee changed"),
]


def _names(story) -> dict:
    return {"p": story["product"], "c": story["certs"][0], "c2": story["certs"][1], "cid": story["cids"][0],
            "cid2": story["cids"][1], "a": story["publisher"], "b": story["subscriber"], "l": story["licence"],
            "e": story["encrypted"]["certificate_id"], "ecid": story["encrypted"]["cid"], "zero": "00" * 32}


@pytest.mark.parametrize("what,sql,named", EDITS, ids=[e[0] for e in EDITS])
def test_each_kind_of_edit_is_named(what, sql, named, ledger, db, story):
    names = _names(story)
    tamper(db, sql, **{k: v for k, v in names.items() if f":{k}" in sql})
    expected = named.format(**names)
    found = failures(ledger, db, story["ctx"].store)
    head, _, tail = expected.partition("*")
    assert any(n.startswith(head) and n.endswith(tail) for n in found), (what, found)


def test_untouched_store_reads_back(ledger, db, story, stored_copy):
    report = audit_consistency(ledger, db, stored_copy)
    assert report.passed, [c.name + ": " + c.detail for c in report.failed()]
    assert report.facts["content_store"] == "read back"


@pytest.fixture
def stored_copy(story, tmp_path):
    """The certified artifacts copied block for block (CAR export/import) into an embedded store to tamper with."""
    store = EmbeddedStore(tmp_path / "store")
    for cid in story["cids"] + [story["encrypted"]["cid"]]:
        car = io.BytesIO()
        story["ctx"].store.export_car(cid, car)
        car.seek(0)
        store.import_car(car)
    return store


def _overwrite(store, cid: str, data: bytes) -> None:
    path, offset, length = store.blocks.locate(parse(cid))
    assert len(data) == length
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _foreign_bytes(store, story):
    """Another product's bytes under a product's CID; names the product."""
    one, two = story["cids"]
    _overwrite(store, one, store.get_bytes(two))
    return [story["certs"][0]]


def _sealed_replaced(store, story):
    """An encrypted artifact's ciphertext replaced."""
    sealed = story["encrypted"]["cid"]
    _overwrite(store, sealed, store.get_bytes(sealed)[::-1])
    return [story["encrypted"]["certificate_id"]]


def _entries_swapped(store, story):
    """Two products' block entries in the store's index swapped (each CID serves the other's bytes)."""
    a, b = (str(parse(c).v1()) for c in story["cids"])
    with sqlite3.connect(store.root / "index.sqlite") as index:
        where = {cid: (pack, offset, length) for cid, pack, offset, length in
                 index.execute("SELECT cid, pack, offset, length FROM blocks").fetchall()}
        index.execute("UPDATE blocks SET pack = ?, offset = ?, length = ? WHERE cid = ?", (*where[b], a))
        index.execute("UPDATE blocks SET pack = ?, offset = ?, length = ? WHERE cid = ?", (*where[a], b))
    return story["certs"]


@pytest.mark.parametrize("swap", [_foreign_bytes, _sealed_replaced, _entries_swapped], ids=lambda f: f.__name__[1:])
def test_swapped_stored_bytes_are_named(swap, ledger, db, story, stored_copy):
    certs = swap(stored_copy, story)
    assert sorted(failures(ledger, db, stored_copy)) == sorted(
        f"stored artifact of certificate {c}: unreadable or altered" for c in certs)



def test_untouched_database_is_consistent(ledger, db):
    report = audit_consistency(ledger, db)
    assert report.passed, [c.name + ": " + c.detail for c in report.failed()]
    assert report.facts["replayed"]["certificate"] >= 2 and report.facts["replayed"]["usage_batch"] >= 1


def test_edited_price_and_owners_are_named(ledger, db, story):
    tamper(db, "UPDATE plan SET price = 12 WHERE product_id = :p", p=story["product"])
    tamper(db, "UPDATE purchase SET price = 12 WHERE licence_id = :l", l=story["licence"])
    tamper(db, "UPDATE product SET publisher = :x WHERE id = :p", x="0x" + "66" * 20, p=story["product"])
    tamper(db, "UPDATE licence SET holder = :x WHERE id = :l", x="0x" + "77" * 20, l=story["licence"])
    found = failures(ledger, db)
    purchase = next(n for n in found if n.startswith("purchase"))
    assert f"plan {story['product']}/per-use: price changed" in found
    assert purchase.endswith(": price changed")
    assert f"product {story['product']}: publisher changed" in found
    assert f"licence {story['licence']}: holder changed" in found
    assert len(found) == 4


def test_deleted_usage_record_is_named(ledger, db, story):
    with db.connect() as conn:
        rid, batch = conn.execute(text("SELECT id, batch_id FROM redemption WHERE licence_id = :l ORDER BY id DESC"),
                                  {"l": story["licence"]}).first()
    tamper(db, "DELETE FROM redemption WHERE id = :r", r=rid)
    found = failures(ledger, db)
    assert f"usage batch {batch}: records deleted or altered" in found
    assert "on-chain redemption has no usage record" in found  # the deleted record named an on-chain redemption


def test_swapped_certificate_metadata_is_named(ledger, db, story):
    one, two = story["certs"]
    with db.connect() as conn:
        meta = dict(conn.execute(text("SELECT id, metadata_json FROM certificate WHERE id IN (:a, :b)"),
                                 {"a": one, "b": two}).all())
    tamper(db, "UPDATE certificate SET metadata_json = :m WHERE id = :a", m=meta[two], a=one)
    tamper(db, "UPDATE certificate SET metadata_json = :m WHERE id = :b", m=meta[one], b=two)
    assert sorted(failures(ledger, db)) == [f"certificate {one}: metadata does not match its certified hash",
                                            f"certificate {two}: metadata does not match its certified hash"]
    tamper(db, "UPDATE certificate SET metadata_hash = :h, cid = 'bafkfake' WHERE id = :a", h="00" * 32, a=one)
    found = failures(ledger, db)
    assert f"certificate {one}: metadata_hash changed" in found and f"certificate {one}: cid changed" in found


def test_unbacked_and_missing_rows_are_named(ledger, db, story):
    tamper(db, """INSERT INTO certificate (id, product_id, version, previous, publisher, kind, cid, sha256, metadata_hash,
                  metadata_json, status, signature, nonce, block_number, block_time, tx_hash)
                  VALUES (999999, 999999, 1, 0, '0x0', 'data', 'x', 'x', 'x', '{}', 'on-shelf', 'x', 0, 1, 0, '0x')""")
    tamper(db, "DELETE FROM licence WHERE id = :l", l=story["licence"])
    found = failures(ledger, db)
    assert "certificate 999999: row not backed by the chain" in found
    assert f"licence {story['licence']}: chain record missing from the database" in found


def test_marketplace_artifact_and_usage_proof_verify_from_the_chain_alone(ledger, story):
    product = audit_product(ledger, story["certs"][0], data=story["artifact"], store=story["ctx"].store,
                            metadata=json.dumps({"title": "Audit product 0", "kind": "data", "tags": ["audit"],
                                                 "description": "", "sharing_mode": "download", "licence_terms": "",
                                                 "runner": None}, sort_keys=True, separators=(",", ":")).encode())
    assert product.passed, [c.name for c in product.failed()]
    usage = audit_usage(ledger, story["proof"])
    assert usage.passed and "record matches its redemption transaction" in [c.name for c in usage.checks]


def test_cli_text_json_html_and_exit_status(ledger, db, story, devnet, ipfs, tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("GRIDMART_RPC_URL", devnet.url)
    monkeypatch.setenv("GRIDMART_DEPLOYMENTS_DIR", str(story["book_dir"]))
    monkeypatch.setenv("GRIDMART_DATABASE_URL", str(db.url))
    # the marketplace's store: its bytes are read back too
    ok = runner.invoke(audit_cli, ["consistency", "--ipfs-api", ipfs.api(), "--html", str(tmp_path / "r.html")])
    assert ok.exit_code == 0, ok.output
    assert "PASSED" in ok.output and "PASSED" in (tmp_path / "r.html").read_text()
    cert = runner.invoke(audit_cli, ["product", str(story["certs"][0]), "--json"])
    assert cert.exit_code == 0 and json.loads(cert.output)[0]["passed"]
    (tmp_path / "a.csv").write_bytes(story["artifact"])
    by_file = runner.invoke(audit_cli, ["product", str(tmp_path / "a.csv")])
    assert by_file.exit_code == 0 and f"certificate {story['certs'][0]} " in by_file.output
    (tmp_path / "proof.json").write_text(json.dumps(story["proof"]))
    proof = runner.invoke(audit_cli, ["usage", str(tmp_path / "proof.json")])
    assert proof.exit_code == 0 and "ok   Merkle proof reaches the anchored root" in proof.output
    tamper(db, "UPDATE plan SET price = 12 WHERE product_id = :p", p=story["product"])
    bad = runner.invoke(audit_cli, ["consistency", "--no-store"])
    assert bad.exit_code == 2 and f"FAIL plan {story['product']}/per-use: price changed" in bad.output
    missing = runner.invoke(audit_cli, ["licence", "0x" + "12" * 32])
    assert missing.exit_code == 1 and "was ever purchased" in str(missing.exception)


def test_read_only_api(ledger, db, story):
    app = FastAPI()  # the router alone (plus the service's error mapping), over a tampered copy of the database
    app.include_router(router)
    app.add_exception_handler(ServiceError, lambda _, exc: JSONResponse({"detail": exc.message}, exc.status_code))
    app.state.ctx = dataclasses.replace(story["ctx"], engine=db)
    api = TestClient(app)
    lic = api.get(f"/audit/licence/{story['licence']}")
    assert lic.status_code == 200 and lic.json()["passed"], lic.text
    page = api.get(f"/audit/product/{story['certs'][0]}", params={"fmt": "html"})
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    posted = api.post(f"/audit/product/{story['certs'][0]}/artifact", content=story["artifact"])
    assert posted.json()["passed"], posted.text
    flipped = api.post(f"/audit/product/{story['certs'][0]}/artifact", content=b"x" + story["artifact"][1:])
    assert [c["name"] for c in flipped.json()["checks"] if not c["passed"]] == ["artifact sha-256", "artifact CID"]
    assert api.get("/audit/member/0x" + "33" * 20).status_code == 404
    assert api.get("/audit/consistency").json()["passed"]
    assert api.get("/audit/consistency", params={"store": "true"}).status_code == 401  # every stored byte: not for all
    ctx = story["ctx"]
    operator = {"Authorization": "Bearer " + tokens.issue(ctx.secret, auth.SESSION, 60, sub=ctx.operator.address)}
    with_store = api.get("/audit/consistency", params={"store": "true"}, headers=operator).json()
    assert with_store["passed"] and any("store" in c["name"] or "stored" in c["name"] for c in with_store["checks"])
    tamper(db, "UPDATE licence SET uses_left = 50 WHERE id = :l", l=story["licence"])
    names = [c["name"] for c in api.get("/audit/consistency").json()["checks"] if not c["passed"]]
    assert names == [f"licence {story['licence']}: uses_left changed"]
