"""#19 end to end: a marketplace wired to a real compute node subprocess. A subscriber's licence
runs a publisher's application as a job; compute-only data runs a subscriber's algorithm
beside it (trusted, or approved by the data owner) and only a policy-checked output comes
back; every job's record is anchored and passes `gridmart audit job`; the CLI follows jobs.
"""
from __future__ import annotations

import csv
import io
import json
import secrets
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from ledger_node.audit import Ledger, audit_job
from ledger_node.compute import datasets
from ledger_node.compute.process import ComputeNode
from ledger_node.devnet import free_port
from ledger_node.wallets import create_wallet
from marketplace.cli.main import build_app
from marketplace.client import ApiError, MarketClient
from tests.compute.conftest import make_bundle

from .conftest import running_market

FINISHED = ("done", "failed", "cancelled", "rejected")

UPPER = """
with open(os.environ['GRIDMART_INPUT']) as src, open(os.environ['GRIDMART_OUTPUT'], 'w') as dst:
    text = src.read()
    print('progress: 50%'); print('read', len(text), 'characters')
    dst.write(text.upper())
"""

# an algorithm for compute-only meter data: customers per district (passes a k=3 policy)
PER_DISTRICT = """
import csv, collections
counts = collections.Counter(row['district'] for row in csv.DictReader(open(os.environ['GRIDMART_DATA'])))
print('counted', sum(counts.values()), 'rows')
with open(os.environ['GRIDMART_OUTPUT'], 'w') as out:
    out.write('district,customers\\n' + ''.join(f'{d},{n}\\n' for d, n in sorted(counts.items())))
"""

# ...and one that tries to carry rows out: one "group" per customer
PER_CUSTOMER = """
import csv
rows = list(csv.DictReader(open(os.environ['GRIDMART_DATA'])))
print('the first row is', rows[0])
with open(os.environ['GRIDMART_OUTPUT'], 'w') as out:
    out.write('CONS_NO,customers\\n' + ''.join(f"{r['CONS_NO']},1\\n" for r in rows))
"""


@pytest.fixture(scope="module")
def stack(gm, operator, ipfs, tmp_path_factory):
    """(base URL, context, compute node) of a marketplace whose `default` node is real."""
    folder = tmp_path_factory.mktemp("compute-market")
    node = ComputeNode(port=free_port(), home=folder / "node", token=secrets.token_hex(16), workers=2).start()
    try:
        with running_market(gm, operator, ipfs, folder, compute_node=node) as (url, ctx):
            yield url, ctx, node
    finally:
        node.stop()


def _client(stack, account) -> MarketClient:
    c = MarketClient(stack[0], account)
    c.login()
    return c


def _member(stack, operator, name: str, roles=("publisher", "subscriber")) -> tuple:
    account = Account.create()
    _client(stack, operator).admit(account.address, name, b"identity of " + name.encode(), list(roles))
    return account, _client(stack, account)


def _wait(client: MarketClient, job_id: int, states=FINISHED, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout}s")


def _on_shelf(stack, operator, as_pub: MarketClient, path: Path, meta: dict, price: int = 10, uses: int = 5) -> dict:
    listing = as_pub.publish(path, meta)
    _client(stack, operator).approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", price, uses)
    return listing


def _licence(as_sub: MarketClient, product_id: int) -> str:
    return as_sub.buy(product_id, "per-use")["licence_id"]


def _run_link(as_sub: MarketClient, licence: str) -> dict:
    return as_sub.redeem(as_sub.sign_voucher(licence, purpose="run"))


def _anchored_proof(client: MarketClient, job_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.job_proof(job_id)
        except ApiError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="module")
def application(stack, operator, tmp_path_factory):
    """A publisher's bundle application on the shelf, and its publisher's client."""
    _, as_pub = _member(stack, operator, "Institute A", ("publisher",))
    path = tmp_path_factory.mktemp("app") / "upper.tar.gz"
    path.write_bytes(make_bundle(UPPER))
    listing = _on_shelf(stack, operator, as_pub, path, {"title": "Upper-caser", "kind": "application",
                                                         "sharing_mode": "remote-run"})
    return listing, as_pub


def test_a_licensed_application_runs_as_a_job_and_its_record_audits(stack, operator, gm, application, tmp_path):
    listing, _ = application
    _, as_sub = _member(stack, operator, "Province A", ("subscriber",))
    licence = _licence(as_sub, listing["product_id"])
    data = tmp_path / "in.txt"
    data.write_text("feeder 7 overloaded\n")
    job = as_sub.start_job(_run_link(as_sub, licence), data)
    assert job["state"] in ("queued", "building", "running", "done") and job["holder"] == as_sub.account.address
    done = _wait(as_sub, job["id"])
    assert done["state"] == "done", done["error"]
    assert done["progress"] == 1.0 and done["env_hash"] and done["output"]["media_type"] == "text/plain"
    out = as_sub.job_result(job["id"], tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "FEEDER 7 OVERLOADED\n" and out["sha256"] == done["output"]["sha256"]
    text, _ = as_sub.job_logs(job["id"])
    assert "read 20 characters" in text
    with pytest.raises(ApiError) as err:  # another member cannot see it
        _member(stack, operator, "Province Z", ("subscriber",))[1].job(job["id"])
    assert err.value.status == 404

    report = audit_job(Ledger(gm.w3, gm.book), _anchored_proof(as_sub, job["id"]),
                       output=(tmp_path / "out.txt").read_bytes())
    assert report.passed, [c for c in report.checks if not c.passed]
    assert report.facts["record"]["algorithm"] == listing["cid"] and report.facts["record"]["state"] == "done"
    forged = report.facts["record"] | {"output_sha256": "00" * 32}
    tampered = _anchored_proof(as_sub, job["id"]) | {"record": json.dumps(forged, sort_keys=True, separators=(",", ":"))}
    assert not audit_job(Ledger(gm.w3, gm.book), tampered).passed


def test_an_input_by_cid_is_one_of_the_holders_own_results_never_anothers_content(stack, operator, application,
                                                                                   tmp_path):
    listing, as_pub = application
    _, as_sub = _member(stack, operator, "Province Chain", ("subscriber",))
    _, as_other = _member(stack, operator, "Province Other", ("subscriber",))
    licence, theirs = _licence(as_sub, listing["product_id"]), _licence(as_other, listing["product_id"])
    (tmp_path / "in.txt").write_text("Mixed Case\n")
    first = _wait(as_sub, as_sub.start_job(_run_link(as_sub, licence), tmp_path / "in.txt")["id"])
    second = _wait(as_sub, as_sub.start_job(_run_link(as_sub, licence), input_cid=first["output"]["cid"])["id"])
    assert second["state"] == "done" and second["input"] == first["output"]["cid"], second["error"]
    as_sub.job_result(second["id"], tmp_path / "twice.txt")
    assert (tmp_path / "twice.txt").read_text() == "MIXED CASE\n"
    for cid, who in ((first["output"]["cid"], "another member's result"), (listing["cid"], "a product's artifact")):
        with pytest.raises(ApiError) as err:
            as_other.start_job(_run_link(as_other, theirs), input_cid=cid)
        assert err.value.status == 404 and "none of your job results" in err.value.detail, who
    with pytest.raises(ApiError) as err:
        as_other.start_job(_run_link(as_other, theirs), input_cid="not-a-cid")
    assert err.value.status == 400 and "input_cid: invalid CID 'not-a-cid'" in err.value.detail


def test_a_running_job_is_cancelled_and_a_failed_one_says_why(stack, operator, tmp_path):
    _, as_pub = _member(stack, operator, "Institute S", ("publisher",))
    sleeper, crasher = tmp_path / "sleep.tar.gz", tmp_path / "crash.tar.gz"
    sleeper.write_bytes(make_bundle("import time\nprint('progress: 10%', flush=True)\ntime.sleep(60)\n"))
    crasher.write_bytes(make_bundle("print('about to fail')\nraise SystemExit(3)\n"))
    slow = _on_shelf(stack, operator, as_pub, sleeper, {"title": "Sleeper", "kind": "tool", "sharing_mode": "remote-run"})
    bad = _on_shelf(stack, operator, as_pub, crasher, {"title": "Crasher", "kind": "tool", "sharing_mode": "remote-run"})
    _, as_sub = _member(stack, operator, "Province S", ("subscriber",))
    job = as_sub.start_job(_run_link(as_sub, _licence(as_sub, slow["product_id"])))
    _wait(as_sub, job["id"], ("running",), timeout=60)
    assert as_sub.cancel_job(job["id"])["state"] in ("running", "cancelled")
    assert _wait(as_sub, job["id"])["state"] == "cancelled"
    with pytest.raises(ApiError) as err:
        as_sub.cancel_job(job["id"])
    assert err.value.status == 409 and "already ended" in err.value.detail

    failed = _wait(as_sub, as_sub.start_job(_run_link(as_sub, _licence(as_sub, bad["product_id"])))["id"])
    assert failed["state"] == "failed" and "status 3" in failed["error"] and "about to fail" in failed["error"]
    with pytest.raises(ApiError) as err:
        as_sub._request("GET", f"/jobs/{failed['id']}/result")
    assert err.value.status == 409 and "failed" in err.value.detail


@pytest.fixture(scope="module")
def meter_data(stack, operator, tmp_path_factory):
    """A data owner's compute-only meter readings, held on its node: trusts one certified tool,
    approves any other algorithm by hand, lets out only tables of at least 3 customers a row."""
    url, _, node = stack
    owner, as_owner = _member(stack, operator, "Province Owner")
    folder = tmp_path_factory.mktemp("meters")
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["CONS_NO", "district", "kwh"])
    for i in range(30):
        writer.writerow([f"C{i:04d}", f"D{i % 3}", 100 + i])
    (folder / "meters.csv").write_text(rows.getvalue())
    dataset = datasets.add(node.home, folder / "meters.csv", owner.address)
    (folder / "tool.tar.gz").write_bytes(make_bundle(PER_DISTRICT, media_type="text/csv"))
    tool = _on_shelf(stack, operator, as_owner, folder / "tool.tar.gz",
                     {"title": "District counter", "kind": "tool", "sharing_mode": "remote-run"})
    as_owner.register_held("default", dataset.cid)
    terms = {"node": "default", "trusted_algorithms": [tool["certificate_id"]], "approve_each": True,
             "output_policy": {"max_output_bytes": 4096, "min_group": 3, "group_column": "customers"}}
    listing = as_owner.list_cid(dataset.cid, {"title": "Meter readings", "kind": "data",
                                              "sharing_mode": "compute-only", "compute": terms})
    _client(stack, operator).approve(listing["certificate_id"])
    as_owner.set_plan(listing["product_id"], "per-use", 20, 5)
    return {"listing": listing, "tool": tool, "owner": as_owner, "cid": dataset.cid, "folder": folder}


def test_a_trusted_tool_runs_beside_compute_only_data_and_only_its_output_returns(stack, operator, gm, meter_data,
                                                                                 tmp_path):
    _, as_sub = _member(stack, operator, "Province Analyst", ("subscriber",))
    product_id = meter_data["listing"]["product_id"]
    assert "cid" not in as_sub.product(product_id).get("latest", {})  # the data's CID is never shown
    delivery = _run_link(as_sub, _licence(as_sub, product_id))
    assert "url" not in delivery  # nothing to download
    job = _wait(as_sub, as_sub.start_job(delivery, algorithm_product=meter_data["tool"]["product_id"])["id"])
    assert job["state"] == "done" and job["compute_only"], job["error"]
    as_sub.job_result(job["id"], tmp_path / "counts.csv")
    assert (tmp_path / "counts.csv").read_text() == "district,customers\nD0,10\nD1,10\nD2,10\n"
    with pytest.raises(ApiError) as err:  # the algorithm's prints stay with the data owner
        as_sub.job_logs(job["id"])
    assert err.value.status == 403
    assert "counted 30 rows" in meter_data["owner"].job_logs(job["id"])[0]
    report = audit_job(Ledger(gm.w3, gm.book), _anchored_proof(as_sub, job["id"]))
    assert report.passed, [c for c in report.checks if not c.passed]
    assert report.facts["record"]["dataset"] == meter_data["cid"]


def test_an_untrusted_algorithm_waits_for_the_owner_and_the_policy_stops_row_level_output(stack, operator,
                                                                                          meter_data, tmp_path):
    as_owner = meter_data["owner"]
    _, as_sub = _member(stack, operator, "Province Curious", ("subscriber",))
    licence = _licence(as_sub, meter_data["listing"]["product_id"])
    (tmp_path / "leak.tar.gz").write_bytes(make_bundle(PER_CUSTOMER, media_type="text/csv"))
    (tmp_path / "count.tar.gz").write_bytes(make_bundle(PER_DISTRICT + "print('own copy')\n", media_type="text/csv"))

    leak = as_sub.start_job(_run_link(as_sub, licence), algorithm=tmp_path / "leak.tar.gz")
    assert leak["state"] == "awaiting-approval"
    assert leak["id"] in [j["id"] for j in as_owner.jobs()]  # the owner's queue shows the request
    with pytest.raises(ApiError) as err:
        as_sub.decide_job(leak["id"], approve=True)
    assert err.value.status == 403
    as_owner.decide_job(leak["id"], approve=True)  # the owner lets it run: the output policy still holds
    leak = _wait(as_sub, leak["id"])
    assert leak["state"] == "failed" and "output policy refused" in leak["error"]
    assert "\n" not in leak["error"] and "C0000" not in leak["error"]  # the holder sees the node's reason only
    assert "C0000" in as_owner.job_logs(leak["id"])[0]  # what the algorithm printed stays with the owner
    with pytest.raises(ApiError) as err:
        as_sub._request("GET", f"/jobs/{leak['id']}/result")
    assert err.value.status == 409

    rejected = as_sub.start_job(_run_link(as_sub, licence), algorithm=tmp_path / "count.tar.gz")
    assert as_owner.decide_job(rejected["id"], approve=False)["state"] == "rejected"
    assert as_sub.job(rejected["id"])["error"] == "the data owner rejected this algorithm"


def test_a_crash_on_compute_only_data_shows_the_holder_and_the_record_only_the_reason(stack, operator, gm, meter_data,
                                                                                     tmp_path):
    _, as_sub = _member(stack, operator, "Province Crash", ("subscriber",))
    licence = _licence(as_sub, meter_data["listing"]["product_id"])
    (tmp_path / "crash.tar.gz").write_bytes(make_bundle(
        "import csv\nprint(next(csv.DictReader(open(os.environ['GRIDMART_DATA'])))['CONS_NO'])\nraise SystemExit(1)\n"))
    job = as_sub.start_job(_run_link(as_sub, licence), algorithm=tmp_path / "crash.tar.gz")
    meter_data["owner"].decide_job(job["id"], approve=True)
    job = _wait(as_sub, job["id"])
    assert job["state"] == "failed" and "status 1" in job["error"] and "C0000" not in job["error"]
    assert "C0000" in meter_data["owner"].job(job["id"])["error"]  # the owner sees the run's last output
    record = json.loads(_anchored_proof(as_sub, job["id"])["record"])
    assert "C0000" not in json.dumps(record) and record["error"] == job["error"]  # nor does the anchored record
    assert audit_job(Ledger(gm.w3, gm.book), _anchored_proof(as_sub, job["id"])).passed


def test_one_redemption_starts_one_job(stack, operator, application, tmp_path):
    listing, _ = application
    _, as_sub = _member(stack, operator, "Province Once", ("subscriber",))
    delivery = _run_link(as_sub, _licence(as_sub, listing["product_id"]))
    (tmp_path / "in.txt").write_text("once\n")
    first = as_sub.start_job(delivery, tmp_path / "in.txt")
    with pytest.raises(ApiError) as err:
        as_sub.start_job(delivery, tmp_path / "in.txt")
    assert err.value.status == 409 and f"already started job {first['id']}" in err.value.detail
    assert [j["id"] for j in as_sub.jobs()] == [first["id"]]


def test_untrusted_algorithms_without_approve_each_are_refused(stack, operator, meter_data, tmp_path):
    as_owner = meter_data["owner"]
    terms = {"node": "default", "trusted_algorithms": [meter_data["tool"]["certificate_id"]],
             "output_policy": {"max_output_bytes": 4096}}
    strict = as_owner.list_cid(meter_data["cid"], {"title": "Meter readings (trusted tools only)", "kind": "data",
                                                  "sharing_mode": "compute-only", "compute": terms})
    _client(stack, operator).approve(strict["certificate_id"])
    as_owner.set_plan(strict["product_id"], "per-use", 20, 5)
    _, as_sub = _member(stack, operator, "Province Strict", ("subscriber",))
    (tmp_path / "algo.tar.gz").write_bytes(make_bundle(PER_DISTRICT, media_type="text/csv"))
    with pytest.raises(ApiError) as err:
        as_sub.start_job(_run_link(as_sub, _licence(as_sub, strict["product_id"])), algorithm=tmp_path / "algo.tar.gz")
    assert err.value.status == 403 and str(meter_data["tool"]["certificate_id"]) in err.value.detail


def test_the_cli_runs_follows_and_fetches_a_job_then_the_auditor_checks_it(stack, operator, application, gm,
                                                                          tmp_path, monkeypatch):
    listing, _ = application
    url = stack[0]
    account, as_sub = _member(stack, operator, "Province CLI", ("subscriber",))
    licence = _licence(as_sub, listing["product_id"])
    wallet = f"cli-sub-{secrets.token_hex(4)}"
    monkeypatch.setenv("GRIDMART_API_URL", url)
    monkeypatch.setenv("GRIDMART_WALLET_PASSWORD", "pw-of-the-cli")
    monkeypatch.setenv("GRIDMART_RPC_URL", gm.w3.provider.endpoint_uri)  # the auditor reads the session chain
    create_wallet(wallet, "pw-of-the-cli", account.key)
    (tmp_path / "in.txt").write_text("hello grid\n")
    cli = CliRunner()

    def gridmart(*args: str, code: int = 0):
        result = cli.invoke(build_app(), list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    def uses_left() -> int:
        return next(lic["uses_left"] for lic in as_sub.licences() if int(lic["id"], 16) == int(licence, 16))

    uses = uses_left()
    for wrong, message in ((["--algorithm-product", "1"], "runs its own bundle"),
                           (["--input-cid", "bafy-nope"], "invalid CID 'bafy-nope'")):
        with pytest.raises(Exception, match=message):  # refused before a use is spent
            cli.invoke(build_app(), ["job", "run", licence, *wrong, "-w", wallet], catch_exceptions=False)
    assert uses_left() == uses
    out = gridmart("job", "run", licence, "--input", str(tmp_path / "in.txt"), "--out", str(tmp_path / "r.txt"),
                   "-w", wallet)
    assert "done: result saved to" in out and (tmp_path / "r.txt").read_text() == "HELLO GRID\n"
    job_id = as_sub.jobs()[0]["id"]
    assert f"job {job_id}: done" in gridmart("job", "status", str(job_id), "-w", wallet)
    assert "read 11 characters" in gridmart("job", "logs", str(job_id), "-w", wallet)
    assert f"{job_id}  done" in gridmart("job", "list", "-w", wallet)
    with pytest.raises(Exception, match="already exists"):  # never over an existing file
        cli.invoke(build_app(), ["job", "result", str(job_id), "--out", str(tmp_path / "r.txt"), "-w", wallet],
                   catch_exceptions=False)
    (tmp_path / "mine.txt").write_text("my own file")
    with pytest.raises(Exception, match="already exists"):  # the client's check too, which no race can pass
        as_sub.job_result(job_id, tmp_path / "mine.txt")
    assert (tmp_path / "mine.txt").read_text() == "my own file" and (tmp_path / "r.txt").read_text() == "HELLO GRID\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []
    _anchored_proof(as_sub, job_id)
    gridmart("job", "proof", str(job_id), "--out", str(tmp_path / "proof.json"), "-w", wallet)
    report = gridmart("audit", "job", str(tmp_path / "proof.json"), "--output", str(tmp_path / "r.txt"))
    assert "the output file is the recorded output" in report  # and exit code 0: every check passed



def test_a_theft_model_is_trained_where_the_data_is_and_only_the_model_comes_back(stack, operator, tmp_path):
    """Seed 003 §2.5(2): the demander's model is trained on the owner's node, in the
    environment its pins build (numpy, pandas, scikit-learn, skops from the package registry)."""
    from analytics.bundles import build_training_bundle
    from analytics.card import load_product
    from analytics.data.sgcc import generate_sgcc

    owner, as_owner = _member(stack, operator, "Province Theft Data")
    generate_sgcc(400, seed=3).to_csv(tmp_path / "sgcc.csv", index=False)
    dataset = datasets.add(stack[2].home, tmp_path / "sgcc.csv", owner.address)
    (tmp_path / "train.tar.gz").write_bytes(build_training_bundle())
    trainer = _on_shelf(stack, operator, as_owner, tmp_path / "train.tar.gz",
                        {"title": "Theft-detection trainer", "kind": "tool", "sharing_mode": "remote-run"})
    as_owner.register_held("default", dataset.cid)
    listing = as_owner.list_cid(dataset.cid, {
        "title": "Theft labels, one province", "kind": "data", "sharing_mode": "compute-only",
        "compute": {"trusted_algorithms": [trainer["certificate_id"]], "output_policy": {"max_output_bytes": 8 << 20}}})
    _client(stack, operator).approve(listing["certificate_id"])
    as_owner.set_plan(listing["product_id"], "per-use", 30, 1)
    _, as_sub = _member(stack, operator, "Province Demander", ("subscriber",))
    delivery = _run_link(as_sub, _licence(as_sub, listing["product_id"]))
    job = _wait(as_sub, as_sub.start_job(delivery, algorithm_product=trainer["product_id"])["id"], timeout=900)
    assert job["state"] == "done", job["error"]
    as_sub.job_result(job["id"], tmp_path / "model.tar")
    with tarfile.open(tmp_path / "model.tar") as tar:
        assert sorted(tar.getnames()) == ["metrics.json", "theft-detection.card.json", "theft-detection.skops"]
        tar.extractall(tmp_path / "model", filter="data")
    _, card = load_product(tmp_path / "model" / "theft-detection.skops", "theft-detection")
    assert card["metrics_holdout"]["auc"] > 0.8 and card["data"]["rows"] == 320
    with zipfile.ZipFile(tmp_path / "model" / "theft-detection.skops") as skops_file:
        returned = b"".join(skops_file.read(n) for n in skops_file.namelist())
    returned += b"".join((tmp_path / "model" / n).read_bytes() for n in ("metrics.json", "theft-detection.card.json"))
    customers = [row["CONS_NO"].encode() for row in csv.DictReader((tmp_path / "sgcc.csv").open())]
    assert not [c for c in customers if c in returned]  # no customer id left the owner's node
