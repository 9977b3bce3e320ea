"""Benchmark of the FL coordinator's bookkeeping as a task grows long.

One task of five partners (plaintext backend, a 4-weight model, so that only the
coordinator's own work is timed) runs 1,000 rounds in-process (of 1,001: still running); each round is five
accepted uploads, the aggregation and five metrics reports, each persisted as the
coordinator does (fl_coordinator/service.py). Prints the time per round after 10, 100
and 1,000 rounds: the bytes written per round do not grow with the rounds behind it (what
grows a little is the file system's work in larger directories).
Last line: one JSON object with every figure.

Run: PYTHONPATH=. .venv/bin/python bench/fl_state.py [--rounds 1000]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fl_coordinator import he  # noqa: E402
from fl_coordinator.keys import wallet_public_key  # noqa: E402
from fl_coordinator.ledger import InMemoryLedger  # noqa: E402
from fl_coordinator.model import FedMLPClassifier  # noqa: E402
from fl_coordinator.service import TaskService  # noqa: E402
from ledger_node.config import Settings  # noqa: E402
from ledger_node.content import open_store  # noqa: E402

METRICS = {"federated": {"accuracy": 0.9, "recall": 0.8, "auc": 0.95},
           "local": {"accuracy": 0.9, "recall": 0.8, "auc": 0.95}, "n_val": 3000}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1000)
    args = ap.parse_args()
    checkpoints = [n for n in (10, 100, 1000, 10_000) if n <= args.rounds]
    home = Path(tempfile.mkdtemp(prefix="gm-fl-state-"))
    keys = he.generate("plain")
    svc = TaskService(open_store(Settings(home=home / "c")), InMemoryLedger(), home / "spool")
    owner, *partners = [Account.create() for _ in range(6)]
    model = FedMLPClassifier(hidden=()).init_weights(3)
    task = svc.create_task(owner.address, name="bench", architecture=model.architecture(),
                           initial_weights=model.get_weights(), backend="plain",
                           public_context=keys.public().public_bytes, rounds=args.rounds + 1, min_partners=1,
                           round_seconds=1e6, training={}, dp=None, seed=0)
    for p in partners:
        svc.join(task.task_id, p.address, wallet_public_key(p.key))
    svc.put_envelopes(task.task_id, owner.address, {p.address: b"sealed" for p in partners})
    svc.start(task.task_id, owner.address)
    update = keys.encrypt(np.zeros(model.n_params))
    rows, times = [], []
    t_all = time.time()
    for r in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        for i, p in enumerate(partners):
            svc.submit(task.task_id, r, p.address, update, 100 * (i + 1))
        for p in partners:
            svc.report_metrics(task.task_id, r, p.address, METRICS)
        times.append(1000 * (time.perf_counter() - t0))
        if r in checkpoints:
            rows.append({"after_rounds": r, "ms_per_round": statistics.median(times[-10:]),
                         "task_json_bytes": (home / "spool" / task.task_id / "task.json").stat().st_size})
            print(f"  {r} rounds done [{time.time() - t_all:.0f} s]", file=sys.stderr, flush=True)
    assert task.status == "running" and task.current.number == args.rounds + 1, task.status
    shutil.rmtree(home, ignore_errors=True)

    print("FL coordinator bookkeeping per round (5 uploads + aggregation + 5 metrics reports, each saved)")
    print(f"{'after rounds':>12} | {'ms per round (median of last 10)':>32} | {'task.json bytes':>15}")
    for row in rows:
        print(f"{row['after_rounds']:>12} | {row['ms_per_round']:>32.1f} | {row['task_json_bytes']:>15}")
    print(json.dumps({"rounds": args.rounds, "partners": len(partners), "checkpoints": rows}))


if __name__ == "__main__":
    main()
