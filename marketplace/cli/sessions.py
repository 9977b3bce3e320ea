"""Sign-in sessions the CLI keeps between commands (<GRIDMART_HOME>/sessions.json, 0600), so a
read-only command after `gridmart login` needs no password until the session ends. Only the
API's bearer token is kept, never the key; anything that signs still opens the wallet."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ledger_node.config import get_settings

MARGIN_SECONDS = 30  # a token this close to its end is not reused


def _path() -> Path:
    return get_settings().home / "sessions.json"


def _all() -> dict:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(api_url: str, wallet: str) -> str | None:
    entry = _all().get(f"{api_url}|{wallet}")
    if isinstance(entry, dict) and entry.get("expires", 0) > time.time() + MARGIN_SECONDS:
        return entry.get("token")
    return None


def save(api_url: str, wallet: str, token: str, expires: float) -> None:
    data = {k: v for k, v in _all().items() if isinstance(v, dict) and v.get("expires", 0) > time.time()}
    data[f"{api_url}|{wallet}"] = {"token": token, "expires": expires}
    _write(data)


def drop(api_url: str, wallet: str) -> None:
    data = _all()
    if data.pop(f"{api_url}|{wallet}", None) is not None:
        _write(data)


def _write(data: dict) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
