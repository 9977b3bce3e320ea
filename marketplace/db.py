"""Database engine and sessions (SQLite by default, PostgreSQL via GRIDMART_DATABASE_URL)."""
from __future__ import annotations

from sqlalchemy import BigInteger, event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, create_engine

from . import models  # noqa: F401  (registers the tables)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # noqa: ANN001
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    SQLModel.metadata.create_all(engine)
    _add_columns(engine)
    if engine.dialect.name == "postgresql":
        _widen_integers(engine)
    return engine


#: columns added to tables after databases with those tables existed: (table, column, DDL)
ADDED_COLUMNS = (("redemption", "pending", "BOOLEAN NOT NULL DEFAULT FALSE"), ("upload", "held_by", "VARCHAR"))


def _add_columns(engine: Engine) -> None:
    """Add ADDED_COLUMNS missing from an older database (create_all never alters a table)."""
    found = inspect(engine)
    with engine.begin() as conn:
        for table, column, ddl in ADDED_COLUMNS:
            if found.has_table(table) and column not in {c["name"] for c in found.get_columns(table)}:
                conn.execute(text(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {ddl}'))


def _widen_integers(engine: Engine) -> None:
    """Make columns the models declare BIGINT so in a database created when they were INTEGER
    (create_all adds missing tables, never changes a column). Idempotent; widening loses nothing."""
    found = inspect(engine)
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if not found.has_table(table.name):
                continue
            current = {c["name"]: c["type"] for c in found.get_columns(table.name)}
            for column in table.columns:
                if isinstance(column.type, BigInteger) and not isinstance(current.get(column.name), BigInteger):
                    conn.execute(text(f'ALTER TABLE "{table.name}" ALTER COLUMN "{column.name}" TYPE BIGINT'))


def placeholder(engine: Engine) -> str:
    """The driver's parameter mark, for the raw SQL of the hot paths (sqlite3: ?, psycopg: %s)."""
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"
