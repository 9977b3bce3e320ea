"""schemathesis against the running app's /openapi.json, as an anonymous client, a member and
the operator (real SIWE sessions): no operation answers a server error (5xx).

The app runs on a deployment of its own (the operator's fuzzed calls change price bounds,
suspend members and withdraw products: other suites' contracts stay untouched), seeded with
an approved tool product and a licence so ids 1 exist. Each (operation, actor) gets a bounded,
derandomized set of valid and invalid inputs (schemathesis' positive and negative modes).
A 5xx is recorded with the request (as curl) and the server's traceback.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from eth_account import Account
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ledger_node.content.ipfs_rpc import RpcStore
from ledger_node.contracts import GridMart
from ledger_node.deploy import deploy
from ledger_node.devnet import free_port
from marketplace.app import create_app
from marketplace.db import make_engine
from marketplace.services.context import Context
from marketplace.settings import MarketplaceSettings
from tests.market.conftest import serve

from .conftest import close, make_actors

MAX_EXAMPLES = 15  # per operation, actor and generation mode
#: the audits replay chain events per request (~0.25 s each): fewer examples
SLOW_PREFIX, SLOW_EXAMPLES = "/audit/", 5
WHO = ("anonymous", "member", "operator")
#: cases with a known, unfixed 5xx: test id -> the finding (xfail, strict: a fix makes the
#: test fail until the entry is removed)
FINDINGS: dict[str, str] = {}  # F1 (POST /fl/tasks, malformed CKKS context) fixed in 5802e77


def _operations() -> list[tuple[str, str]]:
    schema = create_app(MarketplaceSettings(database_url="sqlite://", session_secret="schema only")).openapi()
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


def _params(operations: list[tuple[str, str]], prefix: str = "") -> list:
    ids = [f"{prefix}{method} {path}" for method, path in operations]
    return [pytest.param(method, path, id=case, marks=[pytest.mark.xfail(strict=True, reason=FINDINGS[case])]
                         if case in FINDINGS else [])
            for (method, path), case in zip(operations, ids)]


@pytest.fixture(scope="module")
def fuzzed(w3, ipfs, tmp_path_factory) -> Iterator[dict]:  # noqa: F811
    """The running app on its own deployment, its actors, and its schema as served."""
    operator = Account.create()  # the devnet's gas price is 0: no funding needed
    book, _ = deploy(w3, operator, directory=tmp_path_factory.mktemp("fuzz-book"), force=True)
    port = free_port()
    folder = tmp_path_factory.mktemp("fuzz-market")
    settings = MarketplaceSettings(database_url=f"sqlite:///{folder / 'market.db'}", fl_spool=str(folder / "fl-spool"),
                                   domain=f"127.0.0.1:{port}", session_secret="fuzz-secret",
                                   anchor_interval_seconds=0.5, max_upload_mb=1)
    ctx = Context(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                  chain=GridMart(w3, book, operator), store=RpcStore(ipfs.api()), secret=b"fuzz-secret")
    server, thread = serve(create_app(settings, ctx), port)
    url = f"http://127.0.0.1:{port}"
    actors = make_actors(url, operator)
    artifact = folder / "seed.bin"
    artifact.write_bytes(os.urandom(512))
    product = actors["publisher"].client.publish(artifact, {"title": "fuzz seed", "kind": "tool"})
    actors["operator"].client.approve(product["certificate_id"])
    actors["publisher"].client.set_plan(product["product_id"], "month", 10)
    actors["member"].client.buy(product["product_id"], "month")
    try:
        yield {"url": url, "actors": actors, "product_id": product["product_id"],
               "schema": schemathesis.openapi.from_url(f"{url}/openapi.json")}
    finally:
        close(actors)
        server.should_exit = True
        thread.join(timeout=30)


class _Tracebacks(logging.Handler):
    """The server's logged exceptions (uvicorn and the app log a 500's traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.seen.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture
def tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "gridmart.marketplace", "")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def _paced(send):
    """Send, waiting out the rate limit (a 429 says nothing about the input)."""
    for _ in range(30):
        response = send()
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return response


def _strategy(operation):
    modes = [operation.as_strategy(generation_mode=mode) for mode in schemathesis.GenerationMode]
    return st.one_of(*modes)


@pytest.mark.parametrize("method,path", _params(_operations()))
def test_no_server_error(fuzzed, tracebacks, method, path):
    operation = fuzzed["schema"][path][method]
    errors: list[str] = []
    statuses: Counter[int] = Counter()
    examples = SLOW_EXAMPLES if path.startswith(SLOW_PREFIX) else MAX_EXAMPLES
    for who in WHO:
        headers = fuzzed["actors"][who].headers

        @settings(max_examples=examples * 2, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=_strategy(operation))
        def fuzz(case) -> None:
            response = _paced(lambda: case.call(base_url=fuzzed["url"], headers=headers, timeout=60))
            statuses[response.status_code] += 1
            if response.status_code >= 500 and len(errors) < 3:
                errors.append(f"as {who}: HTTP {response.status_code} {response.text[:300]}\n"
                              f"  {case.as_curl_command(headers=headers, base_url=fuzzed['url'])}\n"
                              + (tracebacks.seen[-1] if tracebacks.seen else "  (no traceback logged)"))

        fuzz()
    print(f"{method} {path}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert not errors, f"{method} {path} answered a server error:\n" + "\n\n".join(errors)


# ------------------------------------------------------------------ signed FL writes
#
# The /fl write routes read a raw body whose signature covers its bytes, so their bodies are
# not in the schema and schemathesis sends none. Here hypothesis builds the bodies and the
# member signs each request, so every case passes the signature check and reaches the parsing,
# the limits and the service (POST /fl/tasks as an active publisher that owns a product).

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
_ints = st.integers() | st.sampled_from([0, 1, -1, 2**16, 2**31, 2**63, 2**256])


def _create_task_bodies(product_id: int):
    """Well-formed task requests (real CKKS and plain public contexts, or random bytes), the same
    with up to three fields replaced by any JSON, and any JSON."""
    from fl_coordinator import he
    from fl_coordinator.model import from_architecture

    contexts = [(name, base64.b64encode(he.generate(name).public_bytes).decode()) for name in ("ckks", "plain")]
    backend = st.sampled_from(contexts) | st.tuples(st.sampled_from(["ckks", "paillier"]),
                                                     st.binary(max_size=256).map(lambda b: base64.b64encode(b).decode()))

    architectures = st.fixed_dictionaries({"kind": st.just("mlp"), "n_features": st.integers(1, 8),
                                           "hidden": st.lists(st.integers(1, 4), max_size=2)})
    model = architectures.flatmap(lambda arch: st.tuples(st.just(arch), st.lists(
        st.floats(-10, 10, width=32), min_size=from_architecture(arch).n_params, max_size=from_architecture(arch).n_params)))
    valid = st.tuples(model, st.fixed_dictionaries({
        "name": st.text(max_size=30), "backend": backend,
        "rounds": st.integers(1, 5), "min_partners": st.integers(1, 3), "round_seconds": st.floats(0.1, 100),
        "seed": st.integers(0, 2**32), "product_id": st.just(product_id)},
        optional={"training": st.dictionaries(st.sampled_from(["epochs", "lr", "batch_size"]), _ints | st.floats()),
                  "dp": st.none() | st.dictionaries(st.sampled_from(["clip", "noise", "epsilon"]), st.floats() | _ints)})
    ).map(lambda pair: {**pair[1], "architecture": pair[0][0], "initial_weights": pair[0][1],
                        "backend": pair[1]["backend"][0], "public_context": pair[1]["backend"][1]})
    fields = ["name", "architecture", "initial_weights", "backend", "public_context", "rounds", "min_partners",
              "round_seconds", "seed", "product_id", "training", "dp"]
    replaced = st.tuples(valid, st.dictionaries(st.sampled_from(fields), _json | _ints, min_size=1, max_size=3))
    return valid | replaced.map(lambda pair: {**pair[0], **pair[1]}) | _json


FL_WRITES = [("POST", "/fl/tasks"), ("POST", "/fl/tasks/{task}/join"), ("POST", "/fl/tasks/{task}/keys"),
             ("POST", "/fl/tasks/{task}/key"), ("POST", "/fl/tasks/{task}/start"), ("POST", "/fl/tasks/{task}/finalize"),
             ("POST", "/fl/tasks/{task}/rounds/{round}/update?n_samples={n}"), ("POST", "/fl/tasks/{task}/rounds/{round}/metrics")]


@pytest.mark.parametrize("method,template", _params(FL_WRITES, "signed "))
def test_signed_fl_writes_no_server_error(fuzzed, tracebacks, method, template):
    from fl_coordinator.auth import sign_request

    url, actors = fuzzed["url"], fuzzed["actors"]
    signer = actors["publisher"].account  # an active publisher that owns the seeded product
    bodies = _create_task_bodies(fuzzed["product_id"]) if template == "/fl/tasks" else _json
    errors: list[str] = []
    statuses: Counter[int] = Counter()
    http = actors["anonymous"].client.http

    @settings(max_examples=60 if template == "/fl/tasks" else 20, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(body=bodies, task=st.sampled_from(["0x" + "ab" * 32, "0x" + "00" * 32]),
           round_no=st.integers(0, 65535), n=st.integers(0, 2**63 - 1), raw=st.booleans())
    def fuzz(body, task, round_no, n, raw) -> None:
        target = template.format(task=task, round=round_no, n=n)
        content = json.dumps(body).encode() if not raw else json.dumps(body)[:-1].encode()  # also malformed JSON
        try:
            response = _paced(lambda: http.request(method, url + target, content=content, timeout=60,
                                                   headers=sign_request(signer.key, method, target, content)))
        except httpx.TransportError as exc:  # the server dropped the connection: as bad as a 500
            statuses[type(exc).__name__] += 1
            errors.append(f"{type(exc).__name__}: {exc}\n  {method} {target} body {content[:300]!r}")
            return
        statuses[response.status_code] += 1
        if response.status_code >= 500 and len(errors) < 3:
            errors.append(f"HTTP {response.status_code} {response.text[:300]}\n  {method} {target} body {content[:300]!r}\n"
                          + (tracebacks.seen[-1] if tracebacks.seen else "  (no traceback logged)"))

    fuzz()
    print(f"{method} {template}: {sum(statuses.values())} signed requests, statuses {dict(statuses)}")
    assert statuses.keys() - {401, 409}, "no request got past the signature check"
    assert not errors, f"{method} {template} answered a server error:\n" + "\n\n".join(errors)
