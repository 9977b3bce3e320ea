"""#18 item 1: an index knows the chain it was made on. Served against another (a devnet
restarted without its state), the service stops at start with one line naming the fix, never
answering 500; `gridmart index reset` sets the old index and spools aside and starts afresh."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import httpx
import pytest
from sqlmodel import Session

from ledger_node.config import REPO_ROOT
from ledger_node.devnet import free_port
from marketplace.db import make_engine
from marketplace.models import IndexedBlock, IndexMeta
from marketplace.services.chain_identity import ChainIdentity, ChainMismatch, check, set_aside
from marketplace.settings import MarketplaceSettings
from tests.market.conftest import gridmart_up, up_environment


def _settings(tmp_path) -> MarketplaceSettings:
    return MarketplaceSettings(database_url=f"sqlite:///{tmp_path / 'index.db'}", fl_spool=str(tmp_path / "fl-spool"),
                               compute_spool=str(tmp_path / "compute-spool"))


def test_an_index_records_its_chain_and_refuses_another(gm, tmp_path):
    settings = _settings(tmp_path)
    engine = make_engine(settings.resolved_database_url())
    first = check(engine, gm, settings)
    assert first == ChainIdentity.of(gm) and first.chain_id == gm.w3.eth.chain_id
    assert check(engine, gm, settings) == first  # the same chain again: fine
    other = replace(first, genesis_hash="0x" + "ab" * 32)
    with Session(engine) as session:
        session.merge(IndexMeta(key="chain", value=json.dumps(other.__dict__)))
        session.commit()
    with pytest.raises(ChainMismatch) as refused:
        check(engine, gm, settings)
    message = str(refused.value)
    assert "\n" not in message and "(genesis 0xababababab… then, " in message and "`gridmart index reset`" in message


def test_an_older_index_without_the_record_is_checked_by_its_blocks(gm, tmp_path):
    settings = _settings(tmp_path)
    engine = make_engine(settings.resolved_database_url())
    with Session(engine) as session:  # an index made before the record, on a chain now gone
        session.add(IndexedBlock(number=1, hash="0x" + "cd" * 32))
        session.commit()
    with pytest.raises(ChainMismatch, match="holds block 1 0xcdcdcdcd"):
        check(engine, gm, settings)
    with Session(engine) as session:
        assert session.get(IndexMeta, "chain") is None  # nothing recorded for the wrong chain


def test_set_aside_moves_the_index_and_spools_and_never_a_server_database(tmp_path):
    settings = _settings(tmp_path)
    make_engine(settings.resolved_database_url()).dispose()
    (tmp_path / "fl-spool").mkdir()
    (tmp_path / "fl-spool" / "task.json").write_text("{}")
    moved = set_aside(settings)
    assert {source.name for source, _ in moved} >= {"index.db", "fl-spool"}
    assert not (tmp_path / "index.db").exists() and not (tmp_path / "fl-spool").exists()
    assert all(target.exists() and target.name.endswith(".old") for _, target in moved)
    assert json.loads(next(t for s, t in moved if s.name == "fl-spool").joinpath("task.json").read_text()) == {}
    with pytest.raises(Exception, match="a database server: create a new database"):
        set_aside(MarketplaceSettings(database_url="postgresql+psycopg://u@127.0.0.1:5432/gridmart"))


def test_a_devnet_restarted_without_its_state_is_named_at_start_and_reset_starts_afresh(tmp_path):
    hardhat = {"GRIDMART_DEVNET": "hardhat"}  # the client that keeps no state
    with gridmart_up(tmp_path, **hardhat):
        pass
    env = up_environment(tmp_path, **hardhat)
    again = subprocess.run([sys.executable, "-m", "marketplace.cli.main", "up", "--port", str(free_port())], env=env,
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert again.returncode == 1, again.stdout + again.stderr
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "was made on another chain" in errors[0] and "genesis 0x" in errors[0] and "`gridmart index reset`" in errors[0]
    assert "Traceback" not in again.stderr
    reset = subprocess.run([sys.executable, "-m", "marketplace.cli.main", "index", "reset", "--yes"], env=env,
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert reset.returncode == 0 and "set aside" in reset.stdout, reset.stdout + reset.stderr
    assert list(tmp_path.glob("market.db.*.old"))
    with gridmart_up(tmp_path, **hardhat) as (url, *_):
        assert httpx.get(f"{url}/products").status_code == 200
