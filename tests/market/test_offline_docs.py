"""#18 item 6: the API docs work on an intranet with no CDN: the app serves Swagger UI's and
ReDoc's assets itself."""
from __future__ import annotations

import re

import httpx


def test_the_api_docs_load_only_what_the_app_serves(market):
    url, _ = market
    for page in ("/docs", "/redoc"):
        html = httpx.get(url + page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and not [a for a in assets if a.startswith(("http://", "https://", "//"))], (page, assets)
        for asset in assets:
            r = httpx.get(url + asset)
            assert r.status_code == 200 and len(r.content) > 1000, (page, asset, r.status_code)
    assert "cdn" not in httpx.get(url + "/docs").text.lower()
