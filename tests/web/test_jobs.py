"""Compute jobs in the browser (#19): start one from My licences with an input file, follow it on
My jobs (state, progress, live log) to done, download its result; cancel a running one; a request
on compute-only data waits for its owner's approval, and its holder sees the API's refusal instead
of the log. A real compute node runs the bundles; this module's marketplace is configured with it."""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from playwright.sync_api import Page, expect

from ledger_node.compute import datasets
from ledger_node.compute.process import ComputeNode
from ledger_node.devnet import free_port
from marketplace.client import MarketClient
from marketplace.services.context import Context
from tests.compute.conftest import make_bundle
from tests.market.conftest import running_market

from .pages import message, sign_in
from .test_remote_run import buy_and_redeem_to_run, listed

#: a dependency-free bundle: logs, reports progress, writes its input upper-cased; "sleep…" input keeps it
#: running, "fail…" input makes it exit with an error
SHOUT = """
import time
print("shout: starting", flush=True)
data = open(os.environ["GRIDMART_INPUT"], "rb").read()
print("progress: 50%", flush=True)
print(f"shout: read {len(data)} bytes", flush=True)
if data.startswith(b"fail"):
    sys.exit("shout: this input is not to be shouted")
if data.startswith(b"sleep"):
    for i in range(600):
        print(f"shout: still sleeping ({i})", flush=True)
        time.sleep(0.2)
with open(os.environ["GRIDMART_OUTPUT"], "wb") as out:
    out.write(data.upper())
print("shout: wrote the result", flush=True)
"""


@pytest.fixture(scope="module")
def compute_node(tmp_path_factory) -> Iterator[ComputeNode]:
    node = ComputeNode(port=free_port(), home=tmp_path_factory.mktemp("web-compute-node"),
                       token=secrets.token_hex(16)).start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def site(gm, operator, ipfs, compute_node, tmp_path_factory) -> Iterator[tuple[str, Context]]:
    """This module's marketplace (it replaces conftest's `site` here): the web pages, and jobs on `compute_node`."""
    with running_market(gm, operator, ipfs, tmp_path_factory.mktemp("web-jobs"), compute_node=compute_node,
                        jobs_interval_seconds=0.5) as running:
        yield running


@pytest.fixture(scope="module")
def shout(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shout") / "shout.tar.gz"
    path.write_bytes(make_bundle(SHOUT))
    return path


def start_job(page: Page, content: bytes) -> int:
    """On My licences, right after a redeem: Run…, choose the input, start; lands on My jobs on the new job."""
    page.get_by_role("button", name="Run…").click()
    page.get_by_label("Input file").set_input_files({"name": "input.txt", "mimeType": "text/plain", "buffer": content})
    page.get_by_role("button", name="Start the job").click()
    expect(page).to_have_url(re.compile(r"/web/jobs\.html\?id=\d+$"))
    return int(page.url.rsplit("=", 1)[1])


def no_overflow(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_a_job_is_started_followed_downloaded_and_another_cancelled(open_as, site, operator, shout, screenshots):
    subscriber, product_id = listed(site[0], operator, shout, {"title": "Shouting echo"}, "per-use", 10, 3)
    page, _ = open_as(subscriber)
    buy_and_redeem_to_run(page, product_id, "490 points")
    expect(page.locator("#delivery")).to_contain_text("runs as a compute job")
    expect(page.get_by_role("button", name="Run the product on it")).to_have_count(0)  # not the legacy runner

    first = start_job(page, b"hello grid\n")
    job = page.locator("#job")
    expect(job.get_by_role("heading", name=re.compile(f"Job {first}"))).to_be_visible()
    expect(job.locator("h2 .badge")).to_have_text("done")
    expect(page.locator("#log")).to_contain_text("shout: read 11 bytes")
    expect(page.locator("#log")).to_contain_text("shout: wrote the result")
    assert page.locator("#log").inner_text().count("shout: starting") == 1  # each piece of the log once
    card = page.locator(f"#job-{first}")
    expect(card.locator(".badge")).to_have_text("done")
    expect(card.get_by_role("link", name="Shouting echo")).to_be_visible()  # the product's title, not only its id
    expect(card.locator("progress")).to_have_attribute("value", "1")
    expect(card).to_contain_text("finished")
    assert re.search(r"\d{4}-\d\d-\d\dT", card.inner_text()) is None  # readable dates, not ISO stamps
    colour = card.locator(".badge").evaluate("b => getComputedStyle(b).backgroundColor")
    assert colour == "rgb(30, 123, 52)", colour  # the page's own styles apply under the site's CSP

    with page.expect_download() as saving:
        job.get_by_role("button", name="Download result").click()
    download = saving.value
    assert download.suggested_filename == f"job-{first}-result"
    assert Path(download.path()).read_bytes() == b"HELLO GRID\n"
    expect(message(page)).to_have_text(f"Job {first}'s result is saved as job-{first}-result.")
    expect(page.locator("#result-sha256")).to_have_text(hashlib.sha256(b"HELLO GRID\n").hexdigest())
    expect(page.locator("#result-cid")).to_have_text(page.locator("#output-cid").inner_text())
    expect(job.get_by_role("button", name="Cancel job")).to_have_count(0)
    page.screenshot(path=screenshots / "jobs-01-done.png", full_page=True)

    # the second use of the licence, on a phone: a job that sleeps until it is cancelled from the page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/web/licences.html")
    page.get_by_label("Purpose of use").select_option("run")
    page.get_by_role("button", name="Sign voucher and redeem").click()
    expect(message(page)).to_have_text("Redeemed: your delivery link is ready.")
    second = start_job(page, b"sleep, please\n")
    expect(job.locator("h2 .badge")).to_have_text("running")
    expect(page.locator("#log")).to_contain_text("shout: still sleeping (3)")  # the log grows while it runs
    expect(page.locator(f"#job-{second} .badge")).to_have_text("running")
    expect(page.locator(f"#job-{first} .badge")).to_have_text("done")  # the list holds both, newest first
    assert page.locator("#jobs li.card").first.get_attribute("id") == f"job-{second}"
    no_overflow(page)
    page.screenshot(path=screenshots / "jobs-02-running.png", full_page=True)

    job.get_by_role("button", name="Cancel job").click()
    expect(job.locator("h2 .badge")).to_have_text("cancelled")
    expect(page.locator(f"#job-{second} .badge")).to_have_text("cancelled")
    expect(job.get_by_role("button", name="Cancel job")).to_have_count(0)
    expect(job.get_by_role("button", name="Download result")).to_have_count(0)

    time.sleep(2)  # the last reads after the cancel (the end of the log)
    calls = []  # then nothing runs any more: the page stops polling
    page.on("request", lambda r: "/jobs" in r.url and calls.append(r.url))
    time.sleep(3)
    assert calls == []

    page.goto(f"/web/jobs.html?id={first}")
    expect(job.locator("h2 .badge")).to_have_text("done")
    expect(page.locator("#log")).to_contain_text("shout: wrote the result")
    no_overflow(page)
    page.screenshot(path=screenshots / "jobs-03-phone.png", full_page=True)

    page.get_by_role("link", name=f"Job {second}").click()  # selecting another job in the list
    expect(page).to_have_url(re.compile(f"id={second}$"))
    expect(job.get_by_role("heading", name=re.compile(f"Job {second}"))).to_be_visible()
    expect(page.locator("#log")).to_contain_text("shout: still sleeping (3)")
    no_overflow(page)

    # the third use: a job that fails shows why, in the list and in its details
    page.goto("/web/licences.html")
    page.get_by_label("Purpose of use").select_option("run")
    page.get_by_role("button", name="Sign voucher and redeem").click()
    expect(message(page)).to_have_text("Redeemed: your delivery link is ready.")
    third = start_job(page, b"fail, please\n")
    expect(job.locator("h2 .badge")).to_have_text("failed")
    expect(page.locator("#job-error")).to_contain_text("shout: this input is not to be shouted")
    expect(page.locator(f"#job-{third} .error-text")).to_contain_text("shout: this input is not to be shouted")
    expect(page.locator("#log")).to_contain_text("shout: this input is not to be shouted")
    expect(job.get_by_role("button", name="Download result")).to_have_count(0)
    no_overflow(page)
    page.screenshot(path=screenshots / "jobs-04-failed.png", full_page=True)


def test_the_jobs_page_asks_for_a_sign_in_and_is_in_the_navigation(open_as, site):
    page, _ = open_as(Account.create())
    page.goto("/web/jobs.html")
    expect(message(page)).to_contain_text("Please sign in with your wallet to use this page.")
    page.goto("/")
    page.get_by_role("navigation").get_by_role("link", name="My jobs").click()
    expect(page).to_have_url(re.compile(r"/web/jobs\.html$"))
    expect(page.get_by_role("link", name="My jobs")).to_have_attribute("aria-current", "page")


#: an algorithm for compute-only data: counts the data's rows (its log is the data owner's to read)
COUNT = """
rows = open(os.environ["GRIDMART_DATA"]).read().splitlines()[1:]
print(f"count: counted {len(rows)} rows, the first {rows[0]!r}", flush=True)
with open(os.environ["GRIDMART_OUTPUT"], "w") as out:
    out.write(f"rows: {len(rows)}\\n")
"""


def held_data_listed(url, operator, node: ComputeNode, tmp_path: Path):
    """Compute-only data on the node, listed by its publisher with approve_each; (publisher, subscriber, product id)."""
    as_operator = MarketClient(url, operator)
    as_operator.login()
    publisher, subscriber = Account.create(), Account.create()
    as_operator.admit(publisher.address, "Data owner unit", b"identity of D", ["publisher"])
    as_operator.admit(subscriber.address, "Analyst unit", b"identity of A", ["subscriber"])
    data = tmp_path / "meters.csv"
    data.write_text("CONS_NO,kwh\n1,2\n2,3\n3,4\n")
    held = datasets.add(node.home, data, publisher.address)  # on the owner's own machine, never over the network
    as_publisher = MarketClient(url, publisher)
    as_publisher.login()
    as_publisher.register_held("default", held.cid)
    listing = as_publisher.list_cid(held.cid, {
        "title": "Meter readings (compute-only)", "kind": "data", "sharing_mode": "compute-only",
        "compute": {"node": "default", "approve_each": True, "output_policy": {"max_output_bytes": 1000}}})
    as_operator.approve(listing["certificate_id"])
    as_publisher.set_plan(listing["product_id"], "per-use", 10, 1)
    return publisher, subscriber, listing["product_id"]


def test_a_request_on_compute_only_data_is_approved_by_its_owner(open_as, site, operator, compute_node, tmp_path,
                                                                 screenshots):
    publisher, subscriber, product_id = held_data_listed(site[0], operator, compute_node, tmp_path)
    algorithm = tmp_path / "count.tar.gz"
    algorithm.write_bytes(make_bundle(COUNT))

    page, _ = open_as(subscriber)
    buy_and_redeem_to_run(page, product_id, "490 points")
    expect(page.locator("#delivery")).to_contain_text("only its output comes back")
    page.get_by_role("button", name="Run…").click()
    page.get_by_label("Your algorithm (a bundle file)").set_input_files(algorithm)
    page.get_by_role("button", name="Start the job").click()
    expect(page).to_have_url(re.compile(r"/web/jobs\.html\?id=\d+$"))
    job_id = int(page.url.rsplit("=", 1)[1])
    job = page.locator("#job")
    expect(job.locator("h2 .badge")).to_have_text("awaiting approval")
    expect(page.locator("#log-refused")).to_contain_text("stay with the data owner")  # the API's 403, in words
    expect(page.locator("#log")).to_have_count(0)
    expect(job.get_by_role("button", name="Approve")).to_have_count(0)  # not the holder's to decide

    owner, _ = open_as(publisher)
    sign_in(owner, "/web/jobs.html")
    card = owner.locator(f"#job-{job_id}")
    expect(card).to_contain_text("A request to run on your compute-only data")
    expect(card.locator(".badge")).to_have_text("awaiting approval")
    card.get_by_role("link", name=f"Job {job_id}").click()
    owner_job = owner.locator("#job")
    expect(owner_job.get_by_role("button", name="Reject")).to_be_visible()
    owner_job.get_by_role("button", name="Approve").click()
    expect(message(owner)).to_contain_text(f"Job {job_id} is approved")
    expect(owner_job.locator("h2 .badge")).to_have_text("done")
    expect(owner.locator("#log")).to_contain_text("count: counted 3 rows")  # the owner reads the log
    expect(owner_job.get_by_role("button", name="Download result")).to_have_count(0)  # the output is the holder's
    owner.screenshot(path=screenshots / "jobs-05-owner-approved.png", full_page=True)

    expect(job.locator("h2 .badge")).to_have_text("done")  # the holder's page follows it
    with page.expect_download() as saving:
        job.get_by_role("button", name="Download result").click()
    assert Path(saving.value.path()).read_bytes() == b"rows: 3\n"
    expect(page.locator("#log-refused")).to_be_visible()
    assert "counted" not in page.locator("main").inner_text()
    page.screenshot(path=screenshots / "jobs-06-compute-only-result.png", full_page=True)
