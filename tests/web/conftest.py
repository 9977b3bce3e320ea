"""The marketplace with its web pages over real HTTP, and Debian's chromium driven by Playwright."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from fl_coordinator.service import TaskService
from ledger_node.content.ipfs_rpc import RpcStore
from ledger_node.devnet import free_port
from marketplace.app import create_app
from marketplace.db import make_engine
from marketplace.services.context import Context
from marketplace.settings import MarketplaceSettings
from tests.conftest import ARTIFACTS_DIR
from tests.market.conftest import ipfs, serve  # noqa: F401 - the js-ipfs daemon fixture

from .pages import refused_api_call
from .wallet import TestWallet

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SCREENSHOTS = ARTIFACTS_DIR / "web"

expect.set_options(timeout=30_000)  # chain round trips included


@pytest.fixture(scope="session")
def site_app(gm, operator, ipfs, tmp_path_factory) -> Iterator[tuple[str, Context, object]]:  # noqa: F811
    """(base URL, context, app) of a running marketplace that serves the web pages and the FL zone."""
    port = free_port()
    folder = tmp_path_factory.mktemp("web")
    settings = MarketplaceSettings(database_url=f"sqlite:///{folder / 'market.db'}", fl_spool=str(folder / "fl-spool"), domain=f"127.0.0.1:{port}",
                                   session_secret="test-secret", anchor_interval_seconds=0.5, max_upload_mb=5)
    ctx = Context(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                  chain=gm, store=RpcStore(ipfs.api()), secret=b"test-secret")
    app = create_app(settings, ctx)
    server, thread = serve(app, port)
    yield f"http://127.0.0.1:{port}", ctx, app
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def site(site_app) -> tuple[str, Context]:
    return site_app[:2]


@pytest.fixture(scope="session")
def fl_service(site_app) -> TaskService:
    """The site's federated-learning coordinator (recording on the session chain)."""
    return site_app[2].state.fl_service


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture
def open_as(request, browser, site, screenshots):
    """open_as(account) -> (page, wallet): a fresh browser profile whose wallet holds `account`."""
    url, ctx = site
    contexts, errors = [], []

    def make(account):
        context = browser.new_context(base_url=url, viewport={"width": 1100, "height": 900})
        contexts.append(context)
        wallet = TestWallet(account, ctx.chain.w3)
        wallet.attach(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and not refused_api_call(msg)
                and errors.append(f"{page.url}: {msg.text}"))
        return page, wallet

    yield make
    failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
    for n, context in enumerate(contexts):
        if failed:  # what each browser showed when the test failed
            for page in context.pages:
                page.screenshot(path=screenshots / f"failed-{request.node.name}-{n}.png", full_page=True)
        context.close()
    assert errors == [], f"uncaught errors in the pages: {errors}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
