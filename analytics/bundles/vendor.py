"""The analytics sources an entry point imports, found by reading imports (not by running them).

A bundle carries its own copy of the analytics code it runs, so a node needs only the
pinned wheels; copying just the import closure keeps the heat-map, the CLI glue and this
builder out of every bundle.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

PACKAGE = "analytics"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Modules named by the file's imports (``from a.b import c`` names a.b and a.b.c)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_closure(entry: Path) -> list[Path]:
    """Every analytics source file ``entry`` reaches, with each package's __init__.py."""
    seen: set[Path] = set()
    pending = [entry]
    while pending:
        for module in _imports(pending.pop()):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):  # a.b.c needs a/__init__ and a/b/__init__ too
                path = _module_file(".".join(parts[:depth]))
                if path is not None and path not in seen:
                    seen.add(path)
                    pending.append(path)
    return sorted(seen)


def copy_closure(entry: Path, folder: Path) -> list[str]:
    """Copy the closure of ``entry`` under ``folder/analytics``; the relative paths copied."""
    copied = []
    for path in import_closure(entry):
        rel = path.relative_to(PACKAGE_DIR.parent)
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / rel)
        copied.append(rel.as_posix())
    return copied
