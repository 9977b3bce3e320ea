"""A real compute node subprocess per module, and bundles packed from tiny folders."""
from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from ledger_node.compute import bundle
from ledger_node.compute.process import ComputeNode
from ledger_node.devnet import free_port

FINISHED = ("done", "failed", "cancelled")


def make_bundle(code: str, requirements: list[str] | None = None, resources: dict | None = None,
                media_type: str = "text/plain", files: dict[str, str] | None = None) -> bytes:
    folder = Path(tempfile.mkdtemp(prefix="gridmart-bundle-src-"))
    manifest = {"format": bundle.FORMAT, "name": "probe", "version": "1.0.0", "entry_point": "main.py",
                "requirements": requirements or [], "output": {"media_type": media_type},
                "resources": {"wall_seconds": 60, "memory_mb": 512, **(resources or {})}}
    (folder / bundle.MANIFEST).write_text(json.dumps(manifest))
    (folder / "main.py").write_text("import os, sys\n" + textwrap.dedent(code))
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return bundle.pack(folder)


class Client:
    def __init__(self, node: ComputeNode):
        self.node = node
        self.http = httpx.Client(base_url=node.url, headers=node.headers, timeout=30)

    def submit(self, archive: bytes, ref: str | None = None, input: bytes | None = None, **spec) -> httpx.Response:
        body = {"ref": ref or secrets.token_hex(8), "bundle_sha256": hashlib.sha256(archive).hexdigest(),
                "input_sha256": hashlib.sha256(input).hexdigest() if input is not None else None, **spec}
        files = {"bundle": ("bundle.tar.gz", archive)}
        if input is not None:
            files["input"] = ("input", input)
        return self.http.post("/jobs", data={"spec": json.dumps(body)}, files=files)

    def job(self, job_id: str) -> dict:
        return self.http.get(f"/jobs/{job_id}").json()

    def wait(self, job_id: str, states=FINISHED, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {job['state']} after {timeout}s")

    def run(self, archive: bytes, **kw) -> dict:
        r = self.submit(archive, **kw)
        assert r.status_code == 201, r.text
        return self.wait(r.json()["id"])

    def logs(self, job_id: str) -> str:
        return self.http.get(f"/jobs/{job_id}/logs").text


def start_node(home: Path, **kw) -> ComputeNode:
    return ComputeNode(port=free_port(), home=home, token=secrets.token_hex(16), **kw).start()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = start_node(tmp_path_factory.mktemp("compute-node"))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def client(node):
    return Client(node)
