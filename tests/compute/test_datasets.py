"""Compute-to-data: a dataset added on the node's machine, read by a job, output policy on what comes back."""
from __future__ import annotations

import hashlib
import subprocess
import sys

from ledger_node.content.importer import compute_cid

from .conftest import make_bundle

PUBLISHER = "0x" + "ab" * 20
READINGS = "".join(f"C{i % 7},{i}\n" for i in range(70)).encode()

PER_CUSTOMER = make_bundle("""
    import csv, collections
    rows = list(csv.reader(open(os.environ["GRIDMART_DATA"])))
    totals = collections.Counter()
    for customer, kwh in rows:
        totals[customer] += int(kwh)
    with open(os.environ["GRIDMART_OUTPUT"], "w") as out:
        out.write("customer,kwh,customers\\n")
        for customer, kwh in sorted(totals.items()):
            out.write(f"{customer},{kwh},1\\n")
""", media_type="text/csv")
AGGREGATED = make_bundle("""
    import csv
    rows = list(csv.reader(open(os.environ["GRIDMART_DATA"])))
    customers = len({customer for customer, _ in rows})
    with open(os.environ["GRIDMART_OUTPUT"], "w") as out:
        out.write(f"kwh,customers\\n{sum(int(k) for _, k in rows)},{customers}\\n")
""", media_type="text/csv")
NO_COLUMN = make_bundle("""
    open(os.environ["GRIDMART_OUTPUT"], "w").write("kwh\\n2415\\n")
""", media_type="text/csv")


def add_dataset(home, tmp_path):
    source = tmp_path / "readings.csv"
    source.write_bytes(READINGS)
    out = subprocess.run([sys.executable, "-m", "marketplace.cli.main", "compute", "add-dataset", str(source),
                          "--publisher", PUBLISHER, "--home", str(home)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return dict(line.split() for line in out.stdout.splitlines())


def test_a_job_reads_a_dataset_and_the_output_policy_keeps_groups(node, client, tmp_path):
    printed = add_dataset(node.home, tmp_path)
    assert printed == {"cid": compute_cid(READINGS), "sha256": hashlib.sha256(READINGS).hexdigest(),
                       "size": str(len(READINGS))}
    held = client.http.get(f"/datasets/{printed['cid']}").json()
    assert held == {"cid": printed["cid"], "sha256": printed["sha256"], "size": len(READINGS), "publisher": PUBLISHER}
    assert client.http.get("/datasets/bafkreinotheldnotheld").status_code == 404

    dataset = {"cid": printed["cid"], "sha256": printed["sha256"]}
    rules = {"max_output_bytes": 4096, "min_group": 5, "group_column": "customers"}
    refused = client.run(PER_CUSTOMER, dataset=dataset, policy=rules)
    assert refused["state"] == "failed" and "row 2's customers is not a whole number of at least" in refused["error"]
    assert "at least 5" in refused["error"]
    accepted = client.run(AGGREGATED, dataset=dataset, policy=rules)
    assert accepted["state"] == "done", accepted["error"]
    assert client.http.get(f"/jobs/{accepted['id']}/result").content == b"kwh,customers\n2415,7\n"
    without = client.run(NO_COLUMN, dataset=dataset, policy=rules)
    assert without["state"] == "failed" and "no 'customers' column" in without["error"]
    small = client.run(AGGREGATED, dataset=dataset, policy={**rules, "max_output_bytes": 5})
    assert small["state"] == "failed" and "max_output_bytes 5" in small["error"]

    wrong = client.submit(AGGREGATED, dataset={**dataset, "sha256": "0" * 64})
    assert wrong.status_code == 400 and "not the spec's" in wrong.json()["detail"]


def test_add_dataset_refuses_a_bad_publisher(tmp_path):
    source = tmp_path / "x.csv"
    source.write_text("a\n")
    out = subprocess.run([sys.executable, "-m", "marketplace.cli.main", "compute", "add-dataset", str(source),
                          "--publisher", "alice", "--home", str(tmp_path / "node")], capture_output=True, text=True)
    assert out.returncode == 1 and "is not an address" in out.stderr
