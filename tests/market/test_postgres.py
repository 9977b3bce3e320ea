"""The marketplace on a real PostgreSQL server (Debian's), started and stopped by the fixture."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from eth_account import Account

from ledger_node.content.embedded import EmbeddedStore
from ledger_node.devnet import free_port
from marketplace.app import create_app
from marketplace.client import ApiError, MarketClient
from marketplace.db import make_engine
from marketplace.services.context import Context
from marketplace.settings import MarketplaceSettings

from .conftest import serve

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` system user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if not PG_BIN:
        pytest.fail("PostgreSQL is not installed: run scripts/install_system_deps.sh (make test does)")
    bin_dir = Path(PG_BIN[-1])
    root = Path(tempfile.mkdtemp(prefix="gridmart-pg-"))  # under /tmp: the postgres user must reach it
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "gridmart"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                                 f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=gridmart dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE gridmart")
        yield f"postgresql+psycopg://gridmart@127.0.0.1:{port}/gridmart"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_story_on_postgresql(postgres, gm, operator, tmp_path):
    port = free_port()
    settings = MarketplaceSettings(database_url=postgres, domain=f"127.0.0.1:{port}", session_secret="pg",
                                   anchor_interval_seconds=0.5, fl_spool=str(tmp_path / "fl-spool"))
    engine = make_engine(postgres)
    assert engine.dialect.name == "postgresql"
    ctx = Context(settings=settings, engine=engine, operator=operator, chain=gm,
                  store=EmbeddedStore(tmp_path / "content"), secret=b"pg")
    server, thread = serve(create_app(settings, ctx), port)
    try:
        url = f"http://127.0.0.1:{port}"
        op = MarketClient(url, operator)
        op.login()
        pub, sub = Account.create(), Account.create()
        op.admit(pub.address, "Province P", b"id-p", ["publisher"])
        op.admit(sub.address, "Province S", b"id-s", ["subscriber"])
        as_pub, as_sub = MarketClient(url, pub), MarketClient(url, sub)
        as_pub.login()
        as_sub.login()
        artifact = tmp_path / "a.csv"
        artifact.write_bytes(os.urandom(10_000))
        listing = as_pub.publish(artifact, {"title": "On Postgres", "kind": "data", "tags": ["pg"]}, encrypt=True)
        op.approve(listing["certificate_id"])
        as_pub.set_plan(listing["product_id"], "per-use", 30, 3)
        assert [p["title"] for p in as_sub.catalogue(tag="pg")] == ["On Postgres"]
        order = as_sub.buy(listing["product_id"], "per-use")
        voucher = as_sub.sign_voucher(order["licence_id"], nonce=1)
        delivery = as_sub.redeem(voucher)
        assert as_sub.download(delivery, tmp_path / "copy").read_bytes() == artifact.read_bytes()
        with pytest.raises(ApiError) as err:
            as_sub.redeem(voucher)
        assert err.value.status == 409
        with psycopg.connect(postgres.replace("postgresql+psycopg", "postgresql")) as conn:
            # the table also holds every on-chain redemption the indexer copied (other tests' too): count this holder's
            assert conn.execute("SELECT count(*) FROM redemption WHERE holder = %s", (sub.address,)).fetchone()[0] == 1
            assert conn.execute("SELECT title FROM product WHERE id = %s", (listing["product_id"],)).fetchone()[0] == "On Postgres"
        # a time plan: answered from the index, the row group-committed on PostgreSQL
        as_pub.set_plan(listing["product_id"], "month", 20)
        as_sub.buy(listing["product_id"], "month")
        vouchers = [as_sub.sign_voucher(order["licence_id"], nonce=n) for n in range(2, 12)]
        vouchers.append(as_sub.sign_voucher(order["licence_id"]))  # the client's default nonce: ~2^50
        assert vouchers[-1]["nonce"] > 2 ** 31
        assert all(as_sub.redeem(v)["cid"] == listing["cid"] for v in vouchers)
        with pytest.raises(ApiError) as err:
            as_sub.redeem(vouchers[3])
        assert err.value.status == 409
        with psycopg.connect(postgres.replace("postgresql+psycopg", "postgresql")) as conn:
            assert conn.execute("SELECT count(*), count(on_chain_tx) FROM redemption WHERE holder = %s",
                                (sub.address,)).fetchone() == (12, 1)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_an_older_database_gets_its_integer_columns_widened(postgres):
    admin = postgres.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE legacy")
    url = postgres.rsplit("/", 1)[0] + "/legacy"
    make_engine(url).dispose()
    raw = url.replace("postgresql+psycopg", "postgresql")
    kind = "SELECT data_type FROM information_schema.columns WHERE table_name = 'redemption' AND column_name = 'nonce'"
    with psycopg.connect(raw, autocommit=True) as conn:
        conn.execute("ALTER TABLE redemption ALTER COLUMN nonce TYPE INTEGER")  # as an earlier version made it
        conn.execute("INSERT INTO redemption (licence_id, holder, nonce, purpose, at, record_json) "
                     "VALUES ('0xab', '0x11', 7, 'download', 1, '{}')")
        assert conn.execute(kind).fetchone()[0] == "integer"
    make_engine(url).dispose()
    with psycopg.connect(raw, autocommit=True) as conn:
        assert conn.execute(kind).fetchone()[0] == "bigint"
        assert conn.execute("SELECT nonce FROM redemption").fetchall() == [(7,)]  # widening keeps the rows
