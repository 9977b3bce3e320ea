"""Serve the web pages: `/` is the catalogue, everything else lives under `/web/`."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

STATIC = Path(__file__).with_name("static").resolve()

#: pages only talk to this app and run only their own files
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

router = APIRouter(tags=["web"], include_in_schema=False)


def _file(relative: str) -> Response:
    path = (STATIC / relative).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in TYPES:
        return JSONResponse({"detail": f"no page /web/{relative}"}, status_code=404)
    return FileResponse(path, media_type=TYPES[path.suffix], headers=HEADERS)


@router.get("/")
def home() -> Response:
    return _file("index.html")


@router.get("/web/{relative:path}")
def static_file(relative: str) -> Response:
    return _file(relative or "index.html")
