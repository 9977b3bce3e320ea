"""GridMart's analytics products as compute bundles: manifests, entry points run as a node runs
them (``python -E -s main.py`` in the extracted folder), the theft-training bundle, and the
`gridmart bundle` / `gridmart analytics bundle` / `gridmart publish` checks."""
from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from analytics import registry
from analytics.bundles import build_product_bundle, build_training_bundle
from analytics.bundles.build import TRAINING_NAME
from analytics.card import load_product
from analytics.data.sgcc import generate_sgcc
from ledger_node.compute.bundle import read_manifest
from ledger_node.content.importer import compute_cid
from marketplace.cli.main import main as gridmart_main

SMALL = {"theft-detection": 600, "abnormal-consumption": 400, "charge-risk": 800,
         "transformer-overload": 10, "equipment-failure": 1_500, "customer-portrait": 400}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    for name in registry.names():
        registry.train(name, out, size=SMALL[name], seed=0, holdout_size=max(SMALL[name] // 4, 4))
    return out


def _extract(archive: bytes, folder: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


#: runs main.py, then prints where every analytics module came from (the venv could fall back
#: on the checkout's copy through its editable install if the bundle lacked one)
TRACE_IMPORTS = ("import atexit, runpy, sys\n"
                 "atexit.register(lambda: print('analytics from', sorted({m.__file__ for n, m in sys.modules.items()"
                 " if n.split('.')[0] == 'analytics'})))\n"
                 "runpy.run_path('main.py', run_name='__main__')\n")


def _run_entry(folder: Path, tmp: Path, *, input_path: Path | None = None, data_path: Path | None = None,
               command: tuple[str, ...] | None = None):
    """The entry point as a compute node starts it: -E -s, cwd = bundle, GRIDMART_* set."""
    (tmp / "scratch").mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "TMPDIR": str(tmp / "scratch"),
           "GRIDMART_INPUT": str(input_path or ""), "GRIDMART_DATA": str(data_path or ""),
           "GRIDMART_OUTPUT": str(tmp / "output"), "GRIDMART_SCRATCH": str(tmp / "scratch")}
    manifest = json.loads((folder / "gridmart-bundle.json").read_text())
    return subprocess.run([sys.executable, "-E", "-s", *(command or (manifest["entry_point"],))], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _gridmart(capsys, *args: str) -> tuple[int, str, str]:
    try:
        gridmart_main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", list(SMALL))
def test_each_product_bundle_has_a_valid_pinned_manifest_and_the_same_bytes_twice(models, name):
    assert set(SMALL) == set(registry.names())
    archive = build_product_bundle(name, models)
    assert build_product_bundle(name, models) == archive
    manifest = read_manifest(archive)
    product = registry.get(name).describe()
    assert (manifest.name, manifest.entry_point, manifest.version) == (name, "main.py", product["version"])
    pins = dict(line.split("==") for line in manifest.requirements)
    for dist in ("numpy", "pandas", "scikit-learn", "scipy", "skops", "joblib", "threadpoolctl"):
        assert pins[dist] == metadata.version(dist)
    assert list(manifest.input.schema_["columns"]) == [c["name"] for c in product["input_schema"]["columns"]]
    assert list(manifest.output.schema_["columns"]) == [c["name"] for c in product["output_schema"]["columns"]]
    assert manifest.output.media_type == "text/csv" and manifest.data is None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
    assert f"model/{name}.skops" in names and f"model/{name}.card.json" in names
    assert "analytics/registry.py" in names and "analytics/card.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("analytics/heatmap", "analytics/bundles"))
                or n in ("analytics/remote_run.py",)]


def test_vendored_code_imports_nothing_outside_analytics(models):
    archive = build_product_bundle("theft-detection", models)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        sources = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.name.endswith(".py")}
    for name, text in sources.items():
        imported = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & {"ledger_node", "marketplace", "fl_coordinator"}, name


@pytest.mark.parametrize("name", list(SMALL))
def test_entry_point_gives_the_same_table_as_the_product_in_process(models, tmp_path, name):
    folder = _extract(build_product_bundle(name, models), tmp_path / "bundle")
    sample = registry.get(name).generate(3 if name == "transformer-overload" else 40, seed=77)
    input_path = tmp_path / "input"  # a node names the file without a suffix
    sample.to_csv(input_path, index=False)
    run = _run_entry(folder, tmp_path, input_path=input_path)
    assert run.returncode == 0, run.stderr
    assert "progress: 1.0" in run.stdout.splitlines()
    expected = registry.predict_file(name, models / f"{name}.skops", input_path).to_csv(index=False)
    assert (tmp_path / "output").read_text() == expected


def test_entry_point_refuses_an_altered_model_and_a_missing_input(models, tmp_path):
    folder = _extract(build_product_bundle("charge-risk", models), tmp_path / "bundle")
    missing = _run_entry(folder, tmp_path, command=("-c", TRACE_IMPORTS))
    assert missing.returncode == 1 and "charge-risk needs an input file" in missing.stderr
    loaded = ast.literal_eval(missing.stdout.split("analytics from ", 1)[1])
    assert len(loaded) > 10 and all(path.startswith(f"{folder.resolve()}/analytics/") for path in loaded)
    model = folder / "model" / "charge-risk.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    registry.get("charge-risk").generate(20, seed=5).to_csv(tmp_path / "input.csv", index=False)
    altered = _run_entry(folder, tmp_path, input_path=tmp_path / "input.csv")
    assert altered.returncode == 1 and "does not match its card" in altered.stderr
    assert not (tmp_path / "output").exists()


def test_training_bundle_returns_a_loadable_model_with_sane_metrics_and_no_data_rows(tmp_path):
    archive = build_training_bundle()
    assert build_training_bundle() == archive
    manifest = read_manifest(archive)
    assert manifest.name == TRAINING_NAME and manifest.input is None
    assert manifest.data.media_type == "text/csv" and manifest.output.media_type == "application/x-tar"
    folder = _extract(archive, tmp_path / "bundle")
    data = tmp_path / "data"
    generate_sgcc(400, seed=3).to_csv(data, index=False)
    run = _run_entry(folder, tmp_path, data_path=data)
    assert run.returncode == 0, run.stderr

    with tarfile.open(tmp_path / "output") as tar:
        assert sorted(tar.getnames()) == ["metrics.json", "theft-detection.card.json", "theft-detection.skops"]
        tar.extractall(tmp_path / "result", filter="data")
    model, card = load_product(tmp_path / "result" / "theft-detection.skops", "theft-detection")
    metrics = json.loads((tmp_path / "result" / "metrics.json").read_text())
    assert metrics == card["metrics_holdout"] and metrics["n"] == 80 and metrics["auc"] > 0.8
    assert card["data"] == {"source": "compute-to-data", "rows": 320,
                            "holdout": {"source": "compute-to-data", "share": 0.2, "rows": 80}}
    customers = [row["CONS_NO"].encode() for row in csv.DictReader(data.open())]
    with zipfile.ZipFile(tmp_path / "result" / "theft-detection.skops") as skops_file:
        returned = b"".join(skops_file.read(n) for n in skops_file.namelist())
    returned += (tmp_path / "result" / "theft-detection.card.json").read_bytes() + json.dumps(metrics).encode()
    assert not [c for c in customers if c in returned]

    sample = generate_sgcc(30, seed=9)
    assert len(registry.get("theft-detection").predict(model, card, sample)) == 30


def test_training_bundle_refuses_data_without_labels(tmp_path):
    folder = _extract(build_training_bundle(), tmp_path / "bundle")
    data = tmp_path / "data"
    generate_sgcc(50, seed=3).drop(columns=["FLAG"]).to_csv(data, index=False)
    run = _run_entry(folder, tmp_path, data_path=data)
    assert run.returncode == 1 and "column 'FLAG'" in run.stderr and not (tmp_path / "output").exists()


def test_cli_bundle_check_and_pack(models, tmp_path, capsys):
    code, out, _ = _gridmart(capsys, "analytics", "bundle", "theft-detection", "--model", str(models),
                             "-o", str(tmp_path / "theft.tar.gz"))
    archive = (tmp_path / "theft.tar.gz").read_bytes()
    assert code == 0 and f"CID {compute_cid(archive)}" in out and archive == build_product_bundle(
        "theft-detection", models)
    env_hash = read_manifest(archive).env_hash()

    code, out, _ = _gridmart(capsys, "bundle", "check", str(tmp_path / "theft.tar.gz"))
    assert code == 0 and out.startswith(f"theft-detection 1.0.0: entry main.py, env {env_hash}")
    assert f"  numpy=={metadata.version('numpy')}" in out.splitlines()

    folder = _extract(archive, tmp_path / "folder")
    code, out, _ = _gridmart(capsys, "bundle", "pack", str(folder), "-o", str(tmp_path / "again.tar.gz"))
    again = (tmp_path / "again.tar.gz").read_bytes()
    assert code == 0 and again == archive
    assert out.strip().endswith(f"CID {compute_cid(archive)} sha-256 {hashlib.sha256(archive).hexdigest()} "
                                f"size {len(archive)}")

    manifest = json.loads((folder / "gridmart-bundle.json").read_text())
    (folder / "gridmart-bundle.json").write_text(json.dumps({**manifest, "requirements": ["numpy>=2"]}))
    for command in (("check", str(folder)), ("pack", str(folder), "-o", str(tmp_path / "bad.tar.gz"))):
        code, out, err = _gridmart(capsys, "bundle", *command)
        assert code == 1 and len(err.strip().splitlines()) == 1
        assert "field 'requirements'" in err and "is not pinned" in err
    assert not (tmp_path / "bad.tar.gz").exists()

    code, _, err = _gridmart(capsys, "analytics", "bundle", "theft-detection", "--model", str(tmp_path),
                             "-o", str(tmp_path / "none.tar.gz"))
    assert code == 1 and "theft-detection.skops not found" in err


def test_publish_validates_a_bundle_before_opening_the_wallet(models, tmp_path, capsys):
    folder = _extract(build_product_bundle("charge-risk", models), tmp_path / "folder")
    manifest = json.loads((folder / "gridmart-bundle.json").read_text())
    (folder / "gridmart-bundle.json").write_text(json.dumps({**manifest, "entry_point": "../main.py"}))
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        tar.add(folder, arcname=".")
    not_a_bundle = tmp_path / "model.skops"
    not_a_bundle.write_bytes(b"not a tar")
    good = tmp_path / "good.tar.gz"
    good.write_bytes(build_product_bundle("charge-risk", models))
    publish = ("publish", "--title", "Charge risk", "--kind", "application", "--wallet", "nobody",
               "--password", "x")

    code, _, err = _gridmart(capsys, *publish, str(broken))  # download mode, but it holds a manifest
    assert code == 1 and len(err.strip().splitlines()) == 1 and "field 'entry_point'" in err
    code, _, err = _gridmart(capsys, *publish, "--mode", "remote-run", str(not_a_bundle))
    assert code == 1 and "not a tar archive" in err and "gridmart bundle pack" in err
    for args in ((str(good),), ("--mode", "remote-run", str(good)), ("--mode", "remote-run", "--runner",
                                                                      "charge-risk", str(not_a_bundle))):
        code, _, err = _gridmart(capsys, *publish, *args)  # valid, or not meant as a bundle: on to the wallet
        assert code == 1 and "bundle" not in err and "nobody" in err
