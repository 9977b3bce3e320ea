"""Compute node settings, from GRIDMART_COMPUTE_* variables (docs/compute.md)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger_node.config import get_settings as ledger_settings
from ledger_node.errors import ConfigError

MIN_TOKEN = 16


class ComputeSettings(BaseSettings):
    """One node: where it keeps jobs, environments and datasets, how it listens, its maxima
    (a bundle's `resources` are capped at these)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMART_COMPUTE_", extra="ignore")

    #: jobs.db, jobs/, envs/, datasets/; default <GRIDMART_HOME>/compute (hidden from every run)
    home: Path | None = None
    token: str = ""
    host: str = "127.0.0.1"
    port: int = 8700
    workers: int = Field(1, ge=1, le=64)
    max_memory_mb: int = 4096
    max_cpu_seconds: int = 3600
    max_wall_seconds: int = 3600
    max_output_mb: int = 256
    max_processes: int = 128
    max_upload_mb: int = 1024
    #: an environment build's own limits (pip)
    build_wall_seconds: int = 900

    @property
    def root(self) -> Path:
        return (self.home or ledger_settings().home / "compute").resolve()

    def require_token(self) -> str:
        if len(self.token) < MIN_TOKEN:
            raise ConfigError(f"the compute node needs GRIDMART_COMPUTE_TOKEN of at least {MIN_TOKEN} characters "
                              "(e.g. `openssl rand -hex 24`)")
        return self.token


@lru_cache
def get_compute_settings() -> ComputeSettings:
    return ComputeSettings()
