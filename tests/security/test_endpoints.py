"""Every endpoint bounded and authorized (#21), against the real app: a real marketplace on the
session Hardhat node and js-ipfs, plus stricter ones (small limits) on the same chain."""
from __future__ import annotations

import json
import logging
import os
import threading
import time

import httpx
import pytest
import uvicorn
from eth_account import Account
from sqlmodel import Session

from fl_coordinator.auth import sign_request
from ledger_node.content.ipfs_rpc import RpcStore
from ledger_node.devnet import free_port
from marketplace.api.errors import error_response
from marketplace.app import create_app
from marketplace.client import ApiError, MarketClient
from marketplace.db import make_engine
from marketplace.models import Member, SiweNonce
from marketplace.services.context import Context
from marketplace.settings import MarketplaceSettings
from tests.market.conftest import client, ipfs, listed, market, unit  # noqa: F401 (fixtures)
from tests.market.test_api_errors import _login_with

MiB = 1 << 20


@pytest.fixture(scope="module")
def make_market(gm, operator, ipfs, tmp_path_factory):  # noqa: F811
    """make_market(**settings) -> (URL, context): another marketplace on the same chain and store,
    with access logs on (INFO)."""
    running = []

    def make(**overrides):
        port = free_port()
        folder = tmp_path_factory.mktemp("strict-market")
        settings = MarketplaceSettings(database_url=f"sqlite:///{folder / 'market.db'}", fl_spool=str(folder / "fl"),
                                       domain=f"127.0.0.1:{port}", session_secret="strict-secret",
                                       anchor_interval_seconds=0.5, **overrides)
        ctx = Context(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                      chain=gm, store=RpcStore(ipfs.api()), secret=b"strict-secret")
        server = uvicorn.Server(uvicorn.Config(create_app(settings, ctx), host="127.0.0.1", port=port, log_level="info"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "marketplace did not start"
            time.sleep(0.05)
        running.append((server, thread))
        return f"http://127.0.0.1:{port}", ctx

    yield make
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=30)


def _chunks(data: bytes, size: int = MiB):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


# ----------------------------------------------------------------- item 3: the audit upload

def test_audit_artifact_is_streamed_and_bounded(make_market, listed, operator, tmp_path):  # noqa: F811
    url, _ = make_market(audit_max_upload_mb=1, max_upload_mb=300)
    as_pub, product = listed("audited", "data", "month", 10, size=3 * MiB)
    data = (tmp_path / "audited.bin").read_bytes()
    cert = product["certificate_id"]
    http = httpx.Client(base_url=url, timeout=120)
    path = f"/audit/product/{cert}/artifact"
    for body in (data, _chunks(data)):  # declared length, or chunked
        r = http.post(path, content=body)
        assert r.status_code == 413, r.text
        assert "exceeds 1 MiB" in r.json()["detail"] and "signed-in members may post up to 300 MiB" in r.json()["detail"]
    small = http.post(path, content=b"not the artifact").json()
    assert {c["name"]: c["passed"] for c in small["checks"]}["artifact sha-256"] is False
    outsider = MarketClient(url, Account.create())
    outsider.login()  # signed in, but not a member: the anonymous limit
    r = http.post(path, content=data, headers={"Authorization": f"Bearer {outsider.token}"})
    assert r.status_code == 413
    assert http.post(path, content=b"x", headers={"Authorization": "Bearer forged"}).status_code == 401
    publisher = MarketClient(url, as_pub.account)
    publisher.login()
    r = http.post(path, content=_chunks(data, 100_000), headers={"Authorization": f"Bearer {publisher.token}"})
    checks = {c["name"]: c["passed"] for c in r.json()["checks"]}
    assert r.status_code == 200 and checks["artifact sha-256"] and checks["artifact CID"], r.text

    # 256 MiB posted by the operator: the server holds about one batch of it, not the body
    op = MarketClient(url, operator)
    op.login()
    block = os.urandom(MiB)
    peak, before, done = [0], _rss(), threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        r = http.post(path, content=(block for _ in range(256)), headers={"Authorization": f"Bearer {op.token}"})
    finally:
        done.set()
        sampler.join()
    assert r.status_code == 200 and {c["name"]: c["passed"] for c in r.json()["checks"]}["artifact sha-256"] is False
    growth = (peak[0] - before) / MiB
    print(f"RSS growth while auditing a 256 MiB body: {growth:.1f} MiB")
    assert growth < 64, growth


# ----------------------------------------------------------------- item 3: FL task creation

def _fl_create(url: str, account, architecture: dict) -> httpx.Response:
    body = json.dumps({"name": "big", "architecture": architecture, "initial_weights": [], "backend": "plain",
                       "public_context": "AA==", "rounds": 1, "min_partners": 1, "round_seconds": 10}).encode()
    headers = {**sign_request(account.key, "POST", "/fl/tasks", body), "Content-Type": "application/json"}
    return httpx.post(url + "/fl/tasks", content=body, headers=headers, timeout=60)


def test_fl_task_membership_then_size(market, unit):  # noqa: F811
    url, ctx = market
    terabytes = {"kind": "mlp", "n_features": 10 ** 7, "hidden": [10 ** 6]}  # 10^13 weights: 80 TB
    r = _fl_create(url, Account.create(), terabytes)
    assert r.status_code == 403 and "publisher role" in r.json()["detail"], r.text
    sub, _ = unit(("subscriber",))
    assert _fl_create(url, sub, terabytes).status_code == 403
    pub, _ = unit(("publisher",))
    r = _fl_create(url, pub, terabytes)
    limit = ctx.settings.fl_max_weights
    assert r.status_code == 413 and f"at most {limit}" in r.json()["detail"], r.text
    r = _fl_create(url, pub, {"kind": "mlp", "n_features": limit, "hidden": [1]})  # just over: 2 * limit + 2
    assert r.status_code == 413
    r = _fl_create(url, pub, {"kind": "mlp", "n_features": 3, "hidden": []})
    assert r.status_code == 422 and "needs 4" in r.json()["detail"]


# ----------------------------------------------------------------- item 4: reads need the right login

def test_operator_income_is_the_operators(market, client, unit):  # noqa: F811
    url, _ = market
    assert httpx.get(url + "/operator/income").status_code == 401
    _, as_member = unit()
    with pytest.raises(ApiError) as err:
        as_member._request("GET", "/operator/income")
    assert err.value.status == 403 and "operator" in err.value.detail
    assert "fee_income" in client()._request("GET", "/operator/income")


# ----------------------------------------------------------------- item 5: integer ranges

def test_out_of_range_integers_are_4xx_and_in_the_schema(market, client):  # noqa: F811
    url, _ = market
    http = httpx.Client(base_url=url, timeout=60)
    op = client()
    auth = {"Authorization": f"Bearer {op.token}"}
    task = "0x" + "ab" * 32
    requests = [
        ("GET", "/audit/product/9223372036854775808", {}), ("GET", "/audit/product/-1", {}),
        ("GET", f"/audit/product/{2 ** 32}", {}), ("POST", f"/audit/product/{2 ** 64}/artifact", {}),
        ("GET", f"/audit/fl/{2 ** 256}", {}), ("GET", "/audit/fl/0", {}),
        ("POST", f"/certificates/{2 ** 63}/approve", {}), ("POST", "/certificates/-5/withdraw", {}),
        ("PUT", "/operator/price-bounds", {"json": {"min_price": 1, "max_price": 70000}}),
        ("PUT", "/operator/price-bounds", {"json": {"min_price": -1, "max_price": 10}}),
        ("GET", f"/fl/tasks/{2 ** 256}", {}), ("GET", f"/fl/tasks/{task}/rounds/{2 ** 20}", {}),
        ("GET", f"/fl/tasks/{task}/rounds/-1", {}),
        ("POST", f"/fl/tasks/{task}/rounds/1/update?n_samples={2 ** 64}", {}),
        ("POST", "/auth/nonce", {"json": {"address": "0x" + "1" * 41}}),
    ]
    for method, path, kw in requests:
        r = http.request(method, path, headers=auth, **kw)
        assert 400 <= r.status_code < 500 and "detail" in r.json(), (method, path, r.status_code, r.text)
    schema = http.get("/openapi.json").json()["paths"]
    cert = schema["/audit/product/{cert_id}"]["get"]["parameters"][0]["schema"]
    assert cert["minimum"] == 1 and cert["maximum"] == 2 ** 32 - 1
    bounds = http.get("/openapi.json").json()["components"]["schemas"]["BoundsRequest"]["properties"]["max_price"]
    assert bounds["maximum"] == 65535
    rnd = [p for p in schema["/fl/tasks/{task_id}/rounds/{round_no}"]["get"]["parameters"] if p["name"] == "round_no"]
    assert rnd[0]["schema"]["maximum"] == 65535


def test_encoding_overflow_is_a_400():
    """The last line of defence (api/errors.py): what web3 or the database driver cannot encode."""
    from eth_abi import encode
    from eth_abi.exceptions import EncodingError

    with pytest.raises(EncodingError) as exc:
        encode(["uint32"], [2 ** 40])
    for error in (exc.value, OverflowError("Python int too large to convert to SQLite INTEGER")):
        response = error_response(error)
        assert response.status_code == 400 and b"out of range" in response.body


# ----------------------------------------------------------------- item 5: rate limits, nonce rows

def test_rate_limits_on_sign_in_and_writes(make_market, operator):
    url, _ = make_market(rate_limit_signin_per_second=0.2, rate_limit_signin_burst=4,
                         rate_limit_writes_per_second=0.2, rate_limit_writes_burst=3)
    http = httpx.Client(base_url=url, timeout=60)
    member = MarketClient(url, operator)
    member.login()  # 2 of the 4 sign-in tokens
    assert http.post("/auth/nonce", json={}).status_code == 200
    assert http.post("/auth/nonce", json={}).status_code == 200
    r = http.post("/auth/nonce", json={})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "sign-in" in r.json()["detail"]
    for _ in range(3):  # anonymous writes, per client address
        assert http.post("/audit/usage", json={}).status_code != 429
    r = http.post("/audit/usage", json={})
    assert r.status_code == 429 and "write or audit requests" in r.json()["detail"] and r.headers["Retry-After"]
    assert http.get("/audit/product/1").status_code == 429  # audits replay the chain: they count too
    # a signed-in member has its own bucket; other reads and POST /redeem are not limited
    signed = {"Authorization": f"Bearer {member.token}"}
    assert http.post("/audit/usage", json={}, headers=signed).status_code != 429
    assert all(http.get("/health").status_code == 200 for _ in range(10))
    assert all(http.post("/redeem", json={}).status_code == 422 for _ in range(10))


def test_expired_nonce_rows_are_deleted(market):  # noqa: F811
    url, ctx = market
    old = int(time.time()) - ctx.settings.siwe_ttl_seconds - 10
    with Session(ctx.engine) as s:
        s.add(SiweNonce(nonce="expiredrow0001", issued_at=old))
        s.commit()
    fresh = httpx.post(url + "/auth/nonce", json={}).json()["nonce"]
    with Session(ctx.engine) as s:
        assert s.get(SiweNonce, "expiredrow0001") is None and s.get(SiweNonce, fresh) is not None


# ----------------------------------------------------------------- item 6: SIWE fields

def test_siwe_uri_and_address_form(market):  # noqa: F811
    url, ctx = market
    acct = Account.create()
    cases = {
        "uri": lambda m: setattr(m, "uri", "https://evil.example/login"),
        "uri ": lambda m: setattr(m, "uri", f"ftp://{ctx.settings.domain}/"),
        "eip-55": lambda m: setattr(m, "address", m.address.lower()),
    }
    for expected, mutate in cases.items():
        r = _login_with(url, acct, mutate)
        assert r.status_code == 401 and expected.strip() in r.json()["detail"].lower(), (expected, r.json())
    r = _login_with(url, acct, lambda m: setattr(m, "uri", f"https://{ctx.settings.domain}/market"))
    assert r.status_code == 200  # any page of this site


# ----------------------------------------------------------------- item 7: the chain decides, not the Member row

def test_member_status_and_roles_come_from_the_chain(market, client, unit, tmp_path):  # noqa: F811
    url, ctx = market
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    account, as_member = unit(("publisher", "subscriber"))
    as_member.upload(f)
    op = client()
    op._request("POST", f"/members/{account.address}/suspend", json={"reason": "test"})
    ctx.indexer.sync()
    with Session(ctx.engine) as s:  # someone with database access "reinstates" the member
        row = s.get(Member, account.address)
        assert row.status == "suspended"
        row.status = "active"
        s.add(row)
        s.commit()
    with pytest.raises(ApiError) as err:
        as_member.upload(f)
    assert err.value.status == 403 and "not an active member" in err.value.detail
    other, as_sub = unit(("subscriber",))
    ctx.indexer.sync()
    with Session(ctx.engine) as s:  # ... or grants a role
        row = s.get(Member, other.address)
        row.roles = 0xFF
        s.add(row)
        s.commit()
    with pytest.raises(ApiError) as err:
        as_sub.upload(f)
    assert err.value.status == 403 and "publisher role" in err.value.detail


# ----------------------------------------------------------------- item 8: delivery links in the access log

def test_access_log_redacts_delivery_tokens(make_market):
    url, _ = make_market()
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    keep = Keep()
    logging.getLogger("uvicorn.access").addHandler(keep)
    try:
        token = "eyJhdWQiOiJkZWxpdmVyeSJ9.c2VjcmV0LW1hYw"
        httpx.get(f"{url}/delivery/{token}")
        httpx.post(f"{url}/delivery/{token}/run", files={"file": ("a.csv", b"x")})
        deadline = time.monotonic() + 5
        while len([x for x in lines if "/delivery/" in x]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        logging.getLogger("uvicorn.access").removeHandler(keep)
    delivery = [x for x in lines if "/delivery/" in x]
    assert len(delivery) == 2 and all("/delivery/<redacted>" in x for x in delivery), lines
    assert not any(token in x for x in lines)


def test_request_bodies_are_bounded(market, client, unit):  # noqa: F811
    """A JSON body over max_json_kb is a 413 (declared or chunked); an anonymous upload is
    refused before its form is read (api/preauth.py); a member's upload over the upload limit
    is refused while it is being read."""
    url, ctx = market
    http = httpx.Client(base_url=url, timeout=60)
    big = json.dumps({"bundle": "x" * (ctx.settings.max_json_kb * 1024)}).encode()
    r = http.post("/audit/usage", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "GRIDMART_MAX_JSON_KB" in r.json()["detail"]
    r = http.post("/audit/usage", content=_chunks(big, 64 * 1024), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "GRIDMART_MAX_JSON_KB" in r.json()["detail"]
    over = (ctx.settings.max_upload_mb + 2) * MiB
    r = http.post("/uploads", files={"file": ("big.bin", b"\0" * over)})  # anonymous
    assert r.status_code == 401 and "sign in first" in r.json()["detail"]
    outsider = client(Account.create())  # any wallet can sign in: an upload also needs the publisher role
    r = http.post("/uploads", files={"file": ("big.bin", b"\0" * over)}, headers={"Authorization": f"Bearer {outsider.token}"})
    assert r.status_code == 403 and "publisher" in r.json()["detail"]
    _, publisher = unit(("publisher",), "uploader")
    r = http.post("/uploads", files={"file": ("big.bin", b"\0" * over)}, headers={"Authorization": f"Bearer {publisher.token}"})
    assert r.status_code == 413 and "GRIDMART_MAX_UPLOAD_MB" in r.json()["detail"]
    forged = http.post("/delivery/eyJhdWQiOiJkZWxpdmVyeSJ9.bWFj/run", files={"file": ("a.csv", b"\0" * over)})
    assert forged.status_code == 403 and "redeem the licence again" in forged.json()["detail"]
    assert http.post("/audit/usage", json={}).status_code == 400  # a small one is answered as before
