"""The federated-learning zone inside the marketplace, recording on the real chain.

Owner and three partners are admitted members; every step runs as a `gridmart fl`
process over HTTP: create (bound to the owner's tool product), join (attested on
chain), grant, train (rounds recorded on chain with their shares), fund (the owner's
own signed transaction), publish (the final model certified as a new version with
lineage to the task; finalising pays the pool out pro rata).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from eth_account import Account
from eth_utils import keccak

from analytics.data.sgcc import generate_sgcc
from fl_coordinator.chain_ledger import ChainLedger
from fl_coordinator.errors import Refused
from fl_coordinator.partner import Coordinator
from fl_coordinator.service import parse_model_blob
from ledger_node.audit import Ledger, audit_fl
from ledger_node.content.cid import cid_to_bytes
from ledger_node.wallets import create_wallet

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "marketplace.cli.main", "fl"]


def _env(home: Path) -> dict:
    env = {**os.environ, "GRIDMART_HOME": str(home), "PYTHONPATH": str(ROOT)}
    for var in ("GRIDMART_IPFS_API", "GRIDMART_API_URL", "GRIDMART_FL_URL"):
        env.pop(var, None)
    return env


def _run(args, env, timeout=180) -> str:
    out = subprocess.run(CLI + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _wait_all(procs, timeout=240) -> list[str]:
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=timeout)
            assert p.returncode == 0, out
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def test_fl_task_on_chain_from_create_to_payout(market, unit, client, tmp_path):
    url, ctx = market
    env = _env(tmp_path / "cli-home")
    owner, owner_client = unit(("publisher", "subscriber"), "model institute")
    partners = [unit(("subscriber",), f"province {i}")[0] for i in range(3)]
    seed_model = tmp_path / "seed-model.json"
    seed_model.write_text('{"note": "untrained theft detector"}')
    tool = owner_client.publish(seed_model, {"title": "Theft detector", "kind": "tool", "tags": ["theft"]})
    client().approve(tool["certificate_id"])
    keys = []
    for i, account in enumerate([owner, *partners]):
        keys.append(tmp_path / f"wallet{i}.key")
        keys[-1].write_text(account.key.hex())
    csvs = []
    for i, (n, rate, scale) in enumerate([(500, 0.1, 1.0), (350, 0.07, 1.5), (250, 0.12, 0.7)]):
        csvs.append(tmp_path / f"province{i}.csv")
        generate_sgcc(n, theft_rate=rate, seed=40 + i, consumption_scale=scale).to_csv(csvs[-1], index=False)
    common = ["--coordinator", url]
    secret = tmp_path / "owner" / "he.secret"

    task = _run(["create", *common, "--key-file", str(keys[0]), "--secret", str(secret), "--product",
                 str(tool["product_id"]), "--rounds", "2", "--min-partners", "3", "--round-seconds", "60",
                 "--hidden", "", "--epochs", "2"], env).strip().splitlines()[-1]
    chain_task = ChainLedger(ctx.chain).chain_task_id(task)
    assert ctx.chain.federated.task(chain_task)["owner"] == owner.address
    assert ctx.chain.federated.task(chain_task)["product_id"] == tool["product_id"]

    stranger = Coordinator(url, Account.create().key.hex())  # not a member: the chain refuses the join
    with pytest.raises(Refused, match="not an active member") as refused:
        stranger.join(task)
    assert refused.value.status == 403
    _wait_all([subprocess.Popen(CLI + ["join", *common, "--key-file", str(k), "--task", task], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for k in keys[1:]])
    assert set(ctx.chain.federated.contributions(chain_task)) == {p.address for p in partners}
    assert Coordinator(url).task(task)["partners"].__len__() == 3  # the stranger was never added

    _run(["grant", *common, "--key-file", str(keys[0]), "--task", task, "--secret", str(secret)], env)
    outs = [tmp_path / f"result{i}.json" for i in range(3)]
    trainers = [subprocess.Popen(CLI + ["train", *common, "--key-file", str(k), "--task", task, "--data", str(c),
                                        "--out", str(o)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for k, c, o in zip(keys[1:], csvs, outs)]
    try:
        for p in trainers:
            for line in p.stdout:
                if line.startswith("ready:"):
                    break
        _run(["grant", *common, "--key-file", str(keys[0]), "--task", task, "--secret", str(secret), "--start"], env)
    finally:
        _wait_all(trainers)
    finals = [np.array(json.loads(o.read_text())["weights"]) for o in outs]
    assert all(np.array_equal(finals[0], f) for f in finals[1:])

    view = Coordinator(url).task(task)
    assert view["status"] == "done" and all(r["recorded"] for r in view["rounds"])
    ledger = Coordinator(url).ledger(task)
    assert ledger["ledger"] == "chain" and ledger["rounds_recorded"] == 2
    expected = {p: 0 for p in view["final_shares_bps"]}
    for r in view["rounds"]:
        assert ctx.chain.federated.round_model(chain_task, r["round"]) == \
            keccak(cid_to_bytes(r["aggregate_cid"]))
        for p, bps in zip(r["partners"], r["shares_bps"]):
            expected[p] += bps
    assert ledger["contributions_bps"] == expected and sum(expected.values()) == 20_000
    # shares are sample-weighted: the biggest province has the biggest share
    assert max(expected, key=expected.get) == partners[0].address

    # the owner funds and publishes with its keystore (-w), like every other gridmart command
    wallet = create_wallet(f"fl-owner-{owner.address[2:10]}", "owner-pw", owner.key).name
    owner_env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDMART_WALLET_PASSWORD": "owner-pw"}
    before = {p.address: ctx.chain.points.balance_of(p.address) for p in [owner, *partners]}
    assert "reward pool of task" in _run(["fund", *common, "-w", wallet, "--task", task, "--points", "90"], owner_env)
    assert ctx.chain.points.balance_of(owner.address) == before[owner.address] - 90

    published = json.loads(_run(["publish", *common, "-w", wallet, "--task", task,
                                 "--secret", str(secret), "--json"], owner_env).splitlines()[-1])
    cert = published["certificate_id"]
    on_chain = ctx.chain.federated.task(chain_task)
    assert on_chain["final_certificate"] == cert and on_chain["status"] == 2
    assert ctx.chain.products.certificate(cert).product_id == tool["product_id"]
    paid = {p.address: ctx.chain.points.balance_of(p.address) - before[p.address] for p in partners}
    assert paid == {p: 90 * bps // 20_000 for p, bps in expected.items()}
    assert ctx.chain.points.balance_of(owner.address) == before[owner.address] - sum(paid.values())
    assert published["payouts"] == {p: v for p, v in paid.items() if v}
    audit = audit_fl(Ledger(ctx.chain.w3, ctx.chain.book), chain_task, ctx.store)  # replayed from events
    assert audit.passed, [c for c in audit.checks if not c.passed]
    assert {"task certificate", "certified model", "certified context"} <= {c.name for c in audit.checks}
    assert audit.facts["certificate"]["cid"] == view["certificate_cid"]
    assert audit.facts["certificate"]["artifacts"]["model"]["cid"] == view["model_cid"]
    assert audit.facts["final_certificate"] == cert and len(audit.facts["rounds"]) == 2

    # the new version holds the decrypted federated model and names its task
    version = owner_client.product(tool["product_id"])["versions"][-1]
    assert version["id"] == cert and version["metadata"]["lineage"]["fl_task"] == task
    assert version["metadata"]["lineage"]["task_certificate_cid"] == view["certificate_cid"]
    arch, weights = parse_model_blob(ctx.store.get_bytes(version["cid"]))
    assert np.array_equal(weights, finals[0]) and arch == view["architecture"]

    again = subprocess.run(CLI + ["publish", *common, "--key-file", str(keys[0]), "--task", task,
                                  "--secret", str(secret)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode != 0 and "already published as certificate" in again.stderr + again.stdout
