"""Settings shared by every GridMart part, read from GRIDMART_* environment variables."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Environment-driven configuration (prefix ``GRIDMART_``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMART_", extra="ignore")

    #: data folder: keystores, devnet logs, embedded content store, SQLite, address books
    home: Path = REPO_ROOT / ".gridmart"
    #: an external EVM JSON-RPC endpoint; when unset, the local Hardhat devnet is used
    rpc_url: str | None = None
    #: port of the local Hardhat devnet started by `gridmart chain up`
    devnet_port: int = 8545
    #: Kubo-compatible IPFS RPC API (multiaddr or URL); unset = embedded store
    ipfs_api: str | None = None
    #: folder holding deployments/<chainId>.json
    deployments_dir: Path = REPO_ROOT / "deployments"

    @property
    def devnet_url(self) -> str:
        return f"http://127.0.0.1:{self.devnet_port}"

    @property
    def effective_rpc_url(self) -> str:
        return self.rpc_url or self.devnet_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
