"""The page router alone: files, content types, security headers, nothing outside static/."""
from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketplace.web.routes import STATIC, router


@pytest.fixture(scope="module")
def http() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_home_is_the_catalogue_with_a_strict_policy(http):
    r = http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<title>Catalogue · GridMart</title>" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path, kind", [("/web/js/pages/product.js", "text/javascript"),
                                        ("/web/css/site.css", "text/css"), ("/web/operator.html", "text/html")])
def test_files_are_served_with_their_type(http, path, kind):
    r = http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith(kind)


@pytest.mark.parametrize("path", ["/web/../routes.py", "/web/%2e%2e/routes.py", "/web/nothing.html", "/web/js"])
def test_nothing_else_is_served(http, path):
    r = http.get(path)
    assert r.status_code == 404 and "APIRouter" not in r.text


def test_every_page_loads_only_files_that_exist():
    for page in STATIC.glob("*.html"):
        for ref in re.findall(r'(?:src|href)="/web/([^"]+)"', page.read_text()):
            assert (STATIC / ref).is_file(), f"{page.name} refers to a missing {ref}"
    for module in STATIC.glob("js/**/*.js"):
        for ref in re.findall(r'from "(\.[^"]+)"', module.read_text()):
            assert (module.parent / ref).resolve().is_file(), f"{module.name} imports a missing {ref}"
