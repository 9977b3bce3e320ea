"""Settings shared by every GridMart part, read from GRIDMART_* environment variables."""
from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Environment-driven configuration (prefix ``GRIDMART_``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMART_", extra="ignore")

    #: data folder: keystores, devnet logs, embedded content store, SQLite, address books;
    #: kept 0700 by secure_home (remote-run's sandbox user must not read it)
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


#: files of the data folder that only the server may read (the SQLite files take their mode from the database)
PRIVATE_FILES = ("session.key", "marketplace.db", "marketplace.db-wal", "marketplace.db-shm", "marketplace.db-journal")


def secure_home(home: Path | None = None) -> Path:
    """Create the data folder 0700 and take group and other access off it, its keystores
    and its private files; called at start, so folders made by older versions are fixed too."""
    home = home or get_settings().home
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    keystores = home / "keystores"
    paths = [home, *(home / name for name in PRIVATE_FILES)]
    if keystores.is_dir():
        paths += [keystores, *keystores.iterdir()]
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
    return home
