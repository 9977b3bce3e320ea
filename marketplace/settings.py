"""Marketplace settings from GRIDMART_* environment variables."""
from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger_node.config import get_settings as ledger_settings


class MarketplaceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDMART_", extra="ignore")

    #: SQLAlchemy URL; default SQLite in the data folder. PostgreSQL: postgresql+psycopg://...
    database_url: str | None = None
    #: host[:port] that SIWE messages must name (the site users sign in to)
    domain: str = "127.0.0.1:8000"
    #: HMAC key for session tokens and signed URLs; default: generated once into the data folder
    session_secret: str | None = None
    session_ttl_seconds: int = 3600
    siwe_ttl_seconds: int = 600
    #: keystore name of the operator wallet (it deploys, admits, approves, relays)
    operator_wallet: str = "operator"
    wallet_password: str | None = None
    #: the largest upload (and audited artifact) a signed-in member may post
    max_upload_mb: int = 2048
    #: the largest JSON request body (any endpoint)
    max_json_kb: int = 1024
    #: the largest artifact an anonymous client may post to /audit/product/{id}/artifact (it is
    #: hashed as it arrives; larger ones: sign in, or audit locally with `gridmart audit product FILE`)
    audit_max_upload_mb: int = 64
    #: how long a delivery link (a bearer URL) can be opened; a download already started goes on
    #: (docs/marketplace.md: why 300 s)
    signed_url_ttl_seconds: int = 300
    #: per client address: sign-in calls (POST /auth/nonce, /auth/login), refilled per second, and burst
    rate_limit_signin_per_second: float = 20.0
    rate_limit_signin_burst: int = 200
    #: per signed-in member, or per client address without a session: non-GET requests
    #: (POST /redeem is exempt: each needs a fresh signed voucher)
    rate_limit_writes_per_second: float = 50.0
    rate_limit_writes_burst: int = 500
    #: usage records are anchored when this many are waiting, or every anchor_interval_seconds
    anchor_batch_size: int = 1000
    anchor_interval_seconds: float = 10.0
    indexer_interval_seconds: float = 0.1
    #: time-plan redemptions are checked against the index only if it saw the chain head this recently
    index_max_lag_seconds: float = 0.5
    #: processes the FL coordinator may use for large homomorphic aggregations
    fl_he_workers: int = 2
    #: the largest model (weights) an FL task may train: the coordinator holds it and every update
    fl_max_weights: int = 1_000_000
    #: where the FL coordinator keeps task state and accepted updates; default GRIDMART_HOME/fl-spool
    fl_spool: str | None = None
    #: compute nodes by name: "default=http://127.0.0.1:8701,zhejiang=http://10.0.0.7:8701" (docs/compute.md);
    #: `gridmart up` starts `default` beside the API
    compute_nodes: str = ""
    #: the bearer token the compute nodes expect (only the API may call them)
    compute_token: str | None = None
    #: how often running jobs are followed on their nodes
    jobs_interval_seconds: float = 1.0
    #: where inputs and algorithms wait until a node takes them, and where results are kept
    compute_spool: str | None = None
    #: test hook: crash the process at a named step (used to prove the reconciler)
    fault: str | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        home = ledger_settings().home
        home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{home / 'marketplace.db'}"

    def resolved_fl_spool(self) -> Path:
        return Path(self.fl_spool) if self.fl_spool else ledger_settings().home / "fl-spool"

    def resolved_compute_spool(self) -> Path:
        return Path(self.compute_spool) if self.compute_spool else ledger_settings().home / "compute-spool"

    def compute_node_urls(self) -> dict[str, str]:
        """{name: base URL}; a malformed entry is a configuration error naming it."""
        nodes = {}
        for entry in filter(None, (e.strip() for e in self.compute_nodes.split(","))):
            name, sep, url = entry.partition("=")
            if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
                raise ValueError(f"GRIDMART_COMPUTE_NODES entry {entry!r} is not name=http(s)://host:port")
            nodes[name.strip()] = url.strip().rstrip("/")
        return nodes

    def resolved_secret(self) -> bytes:
        if self.session_secret:
            return self.session_secret.encode()
        path = ledger_settings().home / "session.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip().encode()


@lru_cache
def get_settings() -> MarketplaceSettings:
    return MarketplaceSettings()
