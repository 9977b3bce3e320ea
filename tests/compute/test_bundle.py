"""The bundle format (ledger_node/compute/bundle.py): manifests refused with the field to fix,
deterministic archives, manifests read from archives without extracting them."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ledger_node.compute import bundle
from ledger_node.content.importer import compute_cid

GOOD = {"format": "gridmart-bundle/1", "name": "theft-detection", "version": "1.0.0", "entry_point": "main.py",
        "requirements": ["numpy==2.4.6", "scikit-learn==1.9.1"], "output": {"media_type": "text/csv"}}


def folder(tmp_path: Path, manifest: dict = GOOD, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "b"
    root.mkdir()
    (root / bundle.MANIFEST).write_text(json.dumps(manifest))
    for name, text in (files or {"main.py": "print('progress: 100%')\n"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("change, field, words", [
    ({"requirements": ["numpy>=2"]}, "requirements", "not pinned"),
    ({"requirements": ["numpy==2.4.6", "NumPy==2.4.6"]}, "requirements", "listed twice"),
    ({"requirements": ["pkg @ https://example.org/pkg.whl"]}, "requirements", "not pinned"),
    ({"entry_point": "../escape.py"}, "entry_point", "relative path"),
    ({"entry_point": "main.sh"}, "entry_point", ".py file"),
    ({"format": "gridmart-bundle/0"}, "format", "gridmart-bundle/1"),
    ({"name": "Has Spaces"}, "name", "lower-case"),
    ({"resources": {"memory_mb": 1}}, "resources.memory_mb", "greater than or equal to 64"),
    ({"surprise": 1}, "surprise", "not a manifest field"),
])
def test_a_bad_manifest_names_the_field_to_fix(change, field, words):
    with pytest.raises(bundle.BundleError) as err:
        bundle.validate({**GOOD, **change})
    assert f"field '{field}'" in str(err.value) and words in str(err.value)


def test_a_missing_field_is_named():
    doc = dict(GOOD)
    del doc["output"]
    with pytest.raises(bundle.BundleError, match="field 'output' is missing"):
        bundle.validate(doc)


def test_the_environment_hash_depends_on_the_pins_only():
    a = bundle.validate(GOOD)
    b = bundle.validate({**GOOD, "name": "other", "requirements": ["Scikit_Learn==1.9.1", "numpy==2.4.6"]})
    c = bundle.validate({**GOOD, "requirements": ["numpy==2.4.5", "scikit-learn==1.9.1"]})
    assert a.env_hash() == b.env_hash() != c.env_hash()
    assert b.pins() == ["numpy==2.4.6", "scikit-learn==1.9.1"]


def test_packing_is_deterministic_and_readable(tmp_path):
    root = folder(tmp_path, files={"main.py": "print(1)\n", "pkg/util.py": "X = 1\n"})
    first = bundle.pack(root)
    (root / "main.py").touch()  # a new mtime changes nothing
    assert bundle.pack(root) == first
    assert compute_cid(bundle.pack(root)) == compute_cid(first)
    manifest = bundle.read_manifest(first)
    assert manifest.name == "theft-detection" and manifest.entry_point == "main.py"
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert sorted(m.name for m in tar.getmembers()) == [bundle.MANIFEST, "main.py", "pkg", "pkg/util.py"]
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_a_folder_without_its_entry_point_is_refused(tmp_path):
    root = folder(tmp_path, files={"other.py": ""})
    with pytest.raises(bundle.BundleError, match="entry_point.*not a file"):
        bundle.pack(root)


def test_links_are_not_packed(tmp_path):
    root = folder(tmp_path)
    (root / "secret").symlink_to("/etc/passwd")
    with pytest.raises(bundle.BundleError, match="link or special file"):
        bundle.pack(root)


def test_an_archive_that_is_not_a_bundle_is_refused(tmp_path):
    assert not bundle.is_bundle(b"not a tar at all")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("readme.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(bundle.BundleError, match="no gridmart-bundle.json"):
        bundle.read_manifest(buffer.getvalue())
