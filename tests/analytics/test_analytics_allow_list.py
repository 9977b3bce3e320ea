"""Model files load with an exact allow-list of types: a file naming a callable is refused unrun."""
from __future__ import annotations

import shutil

import pytest

from analytics import registry
from analytics.card import ALLOWED_TYPES, load_product
from analytics.errors import AnalyticsError
from tests.security.malicious import marker_code, poison


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    model_path, _ = registry.train("customer-portrait", tmp_path_factory.mktemp("portrait"), size=200, seed=0)
    return model_path


def _copy(model_path, folder):
    for f in model_path.parent.iterdir():
        shutil.copy(f, folder / f.name)
    return folder / model_path.name


@pytest.mark.parametrize("module,name,argument", [
    ("builtins", "exec", "marker"),
    ("os", "system", "touch marker"),
    ("builtins", "eval", "marker"),
    ("analytics.card", "save_product", "marker"),  # our own package is not trusted by prefix either
])
def test_a_file_naming_a_callable_is_refused_and_nothing_runs(portrait, tmp_path, module, name, argument):
    marker = tmp_path / "marker"
    code = marker_code(marker) if argument == "marker" else argument.replace("marker", str(marker))
    model_path = poison(_copy(portrait, tmp_path), module, name, code)
    with pytest.raises(AnalyticsError, match=rf"names types GridMart does not load: {module}\.{name}"):
        load_product(model_path, "customer-portrait")
    assert not marker.exists()


def test_the_allow_list_is_exact_names_and_the_genuine_model_loads(portrait):
    assert all(not t.endswith(".") and t.count(".") >= 2 for t in ALLOWED_TYPES)
    model, card = load_product(portrait, "customer-portrait")
    assert card["product"] == "customer-portrait" and hasattr(model, "predict")


def test_a_file_that_is_not_a_skops_zip_is_refused(portrait, tmp_path):
    import json

    from analytics.card import card_path, sha256_file

    model_path = _copy(portrait, tmp_path)
    model_path.write_bytes(b"not a zip")
    card = json.loads(card_path(model_path).read_text())
    card["artifact"]["sha256"] = sha256_file(model_path)
    card_path(model_path).write_text(json.dumps(card))
    with pytest.raises(AnalyticsError, match="is not a readable skops file"):
        load_product(model_path, "customer-portrait")
