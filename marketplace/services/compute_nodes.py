"""The marketplace's client of compute nodes (docs/compute.md: the node HTTP API).

Nodes are named in GRIDMART_COMPUTE_NODES and answer only to GRIDMART_COMPUTE_TOKEN. A node
holds no marketplace key; this client sends it bundles and inputs as bytes and never opens
them here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from .context import Context
from .errors import BadRequest, NotFound, Unavailable


class NodeClient:
    def __init__(self, name: str, url: str, token: str, timeout: float = 30.0):
        self.name, self.url = name, url
        self.http = httpx.Client(base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {token}"})

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            r = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"compute node {self.name!r} is not reachable ({type(exc).__name__}): "
                              "the job waits and is sent when it answers") from None
        if r.status_code == 404:
            raise NotFound(_detail(r))
        if r.status_code in (400, 409, 413, 422):
            raise BadRequest(f"compute node {self.name!r}: {_detail(r)}")
        if r.status_code >= 400:
            raise Unavailable(f"compute node {self.name!r} answered HTTP {r.status_code}: {_detail(r)}")
        return r

    def submit(self, spec: dict, bundle: Path, input_file: Path | None) -> dict:
        with open(bundle, "rb") as b:
            files: dict[str, Any] = {"bundle": ("bundle", b, "application/octet-stream")}
            handle = open(input_file, "rb") if input_file is not None else None
            try:
                if handle is not None:
                    files["input"] = ("input", handle, "application/octet-stream")
                return self._call("POST", "/jobs", data={"spec": json.dumps(spec)}, files=files).json()
            finally:
                if handle is not None:
                    handle.close()

    def status(self, job: str) -> dict:
        return self._call("GET", f"/jobs/{job}").json()

    def logs(self, job: str, offset: int = 0) -> tuple[str, int]:
        r = self._call("GET", f"/jobs/{job}/logs", params={"offset": offset})
        return r.text, int(r.headers.get("X-Next-Offset", offset + len(r.content)))

    def cancel(self, job: str) -> dict:
        return self._call("POST", f"/jobs/{job}/cancel").json()

    def result_to(self, job: str, target: Path, limit: int) -> None:
        """Stream the job's output into `target` (at most `limit` bytes)."""
        try:
            with self.http.stream("GET", f"/jobs/{job}/result") as r:
                if r.status_code >= 400:
                    r.read()
                    raise Unavailable(f"compute node {self.name!r} did not give the result: {_detail(r)}")
                written = 0
                with open(target, "wb") as fh:
                    for chunk in r.iter_bytes(1 << 20):
                        written += len(chunk)
                        if written > limit:
                            raise Unavailable(f"compute node {self.name!r} sent more output than it reported")
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise Unavailable(f"compute node {self.name!r} is not reachable ({type(exc).__name__})") from None

    def dataset(self, cid: str) -> dict:
        return self._call("GET", f"/datasets/{cid}").json()


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except ValueError:
        return r.text[:500]


_clients: dict[tuple[str, str], NodeClient] = {}


def node(ctx: Context, name: str) -> NodeClient:
    """The client of node `name`; a clear error when it is not configured."""
    try:
        urls = ctx.settings.compute_node_urls()
    except ValueError as exc:
        raise Unavailable(str(exc)) from None
    if name not in urls:
        known = ", ".join(sorted(urls)) or "none"
        raise Unavailable(f"this product's jobs run on compute node {name!r}, which this marketplace does not know "
                          f"(configured: {known}; GRIDMART_COMPUTE_NODES)")
    if not ctx.settings.compute_token:
        raise Unavailable("no GRIDMART_COMPUTE_TOKEN is set: the marketplace cannot call its compute nodes")
    key = (name, urls[name])
    if key not in _clients:
        _clients[key] = NodeClient(name, urls[name], ctx.settings.compute_token)
    return _clients[key]

