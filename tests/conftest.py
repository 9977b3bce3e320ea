"""Shared fixtures. Every test session gets its own data folder, so nothing touches ~/.gridmart."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="gridmart-test-"))
os.environ["GRIDMART_HOME"] = str(_SESSION_HOME)
os.environ["GRIDMART_DEPLOYMENTS_DIR"] = str(_SESSION_HOME / "deployments")
os.environ.pop("GRIDMART_RPC_URL", None)
os.environ.pop("GRIDMART_IPFS_API", None)

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "test-artifacts"
