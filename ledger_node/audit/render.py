"""Render audit reports as readable text, JSON, or one self-contained HTML page."""
from __future__ import annotations

import html
import json
from datetime import UTC, datetime

from .result import Report


def as_json(reports: list[Report]) -> str:
    return json.dumps([r.to_dict() for r in reports], indent=2, default=_plain)


def _plain(value: object) -> object:
    return "0x" + value.hex() if isinstance(value, (bytes, bytearray)) else str(value)


def as_text(reports: list[Report]) -> str:
    lines: list[str] = []
    for r in reports:
        lines.append(f"== {r.subject}: {'PASSED' if r.passed else 'FAILED'}")
        for c in r.checks:
            where = f"  [tx {c.tx}]" if c.tx else ""
            lines.append(f"  {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}{where}")
        for key, value in r.facts.items():
            lines.append(f"  {key}:")
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"    - {json.dumps(item, default=_plain)}")
    return "\n".join(lines)


_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}h1{font-size:20px}
h2{font-size:16px;margin-top:1.5em}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
.ok{color:#06702b;font-weight:bold}.fail{color:#b00020;font-weight:bold}code{font-size:12px;word-break:break-all}
pre{background:#f6f6f6;padding:6px;font-size:12px;white-space:pre-wrap}"""


def as_html(reports: list[Report], title: str = "GridMart audit") -> str:
    """One page, no external assets: each check marked passed / failed with its transaction."""
    esc = html.escape
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    overall = all(r.passed for r in reports)
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_STYLE}</style>",
           f"</head><body><h1>{esc(title)} — <span class='{'ok' if overall else 'fail'}'>",
           f"{'PASSED' if overall else 'FAILED'}</span></h1><p>generated {stamp}</p>"]
    for r in reports:
        mark = "ok" if r.passed else "fail"
        out.append(f"<h2>{esc(r.subject)} — <span class='{mark}'>{'passed' if r.passed else 'failed'}</span></h2>")
        out.append("<table><tr><th>check</th><th>result</th><th>detail</th><th>transaction</th></tr>")
        for c in r.checks:
            out.append(f"<tr><td>{esc(c.name)}</td><td class='{'ok' if c.passed else 'fail'}'>"
                       f"{'passed' if c.passed else 'failed'}</td><td>{esc(c.detail)}</td>"
                       f"<td><code>{esc(c.tx or '')}</code></td></tr>")
        out.append("</table>")
        if r.facts:
            out.append(f"<pre>{esc(json.dumps(r.facts, indent=1, default=_plain))}</pre>")
    out.append("</body></html>")
    return "".join(out)


def render(reports: list[Report], fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format {fmt!r}: use text, json or html")
    return RENDERERS[fmt](reports)


RENDERERS = {"text": as_text, "json": as_json, "html": as_html}
