"""Benchmark of the federated-learning zone on electricity-theft detection (seed 003 §3.4 table).

Five provinces with non-IID SGCC-format data (sizes, theft rates, consumption
patterns differ). Prints accuracy / recall / AUC of (a) each province alone,
(b) federated with CKKS over the real HTTP protocol (coordinator process +
five partner processes), (c) centralized on pooled data; the max |HE - plaintext
FedAvg| weight difference after the same rounds; the round wall time with and
without HE; HE aggregation time for 10 partners x 1,000,000 parameters on
2 processes. Last line: one JSON object with every figure.

Run: PYTHONPATH=. .venv/bin/python bench/fl_theft.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.data.sgcc import generate_sgcc  # noqa: E402
from analytics.theft.features import extract_features  # noqa: E402
from fl_coordinator import he  # noqa: E402
from fl_coordinator.dp import DPConfig  # noqa: E402
from fl_coordinator.he import ckks  # noqa: E402
from fl_coordinator.model import FedMLPClassifier, from_architecture  # noqa: E402
from fl_coordinator.partner import Coordinator, evaluate, run_partner  # noqa: E402
from fl_coordinator.strategy import FedAvg  # noqa: E402
from marketplace.cli.fl import prepare_partner_data  # noqa: E402

PROVINCES = [  # name, customers, theft rate, profile knobs (non-IID)
    ("A", 12000, 0.085, dict(consumption_scale=1.0, mean_temperature=15.0)),
    ("B", 6000, 0.05, dict(consumption_scale=1.8, mean_temperature=5.0, heating_share=0.6,
                           class_mix=(0.7, 0.2, 0.1))),
    ("C", 2500, 0.12, dict(consumption_scale=0.6, mean_temperature=24.0, cooling_sensitivity=2.0,
                           temperature_amplitude=6.0)),
    ("D", 1000, 0.10, dict(consumption_scale=1.3, missing_rate=0.08, late_start_share=0.2)),
    ("E", 500, 0.15, dict(consumption_scale=0.8, class_mix=(0.95, 0.04, 0.01), outlier_rate=0.002)),
]
HIDDEN, LR, EPOCHS, BATCH = (32,), 0.05, 2, 32


def load_provinces(scale: float) -> list[dict]:
    out = []
    for i, (name, n, rate, knobs) in enumerate(PROVINCES):
        df = generate_sgcc(max(200, int(n * scale)), theft_rate=rate, seed=100 + i, **knobs)
        X, y, Xv, yv = prepare_partner_data(extract_features(df), df["FLAG"].to_numpy(int), 0.25, i)
        out.append(dict(name=name, X=X, y=y, Xv=Xv, yv=yv))
    return out


def model_params() -> dict:
    return dict(hidden=HIDDEN, lr=LR, epochs=EPOCHS, batch_size=BATCH)


def scores(weights: np.ndarray, arch: dict, provs: list[dict]) -> dict:
    m = from_architecture(arch, weights)
    per = [evaluate(m, p["Xv"], p["yv"]) for p in provs]
    pooled = evaluate(m, np.vstack([p["Xv"] for p in provs]), np.concatenate([p["yv"] for p in provs]))
    return {"per_province": per, "mean": {k: float(np.mean([s[k] for s in per])) for k in per[0]},
            "pooled": pooled}


def train_rounds(X, y, w0, arch, rounds, seed=0) -> np.ndarray:
    """The same local schedule a partner runs: one partial_fit per round with seed*100003+r."""
    w = w0
    for r in range(1, rounds + 1):
        w = from_architecture(arch, w, random_state=seed * 100_003 + r, **_train_kw()).partial_fit(X, y).get_weights()
    return w


def _train_kw() -> dict:
    return dict(lr=LR, epochs=EPOCHS, batch_size=BATCH)


def plaintext_fedavg(provs, w0, arch, rounds, seed=0) -> np.ndarray:
    w = w0
    counts = [len(p["y"]) for p in provs]
    for r in range(1, rounds + 1):
        local = [from_architecture(arch, w, random_state=seed * 100_003 + r, **_train_kw())
                 .partial_fit(p["X"], p["y"]).get_weights() for p in provs]
        w = sum(float(pi) * lw for pi, lw in zip(FedAvg.weights(counts), local))
    return w


# -- the real protocol: coordinator process + partner processes ------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _partner_proc(url, key, task_id, X, y, Xv, yv, queue):
    def log(line: str) -> None:
        if line.startswith("ready:"):
            queue.put(("ready", key))

    res = run_partner(Coordinator(url, key), task_id, X, y, Xv, yv, poll=0.01, log=log)
    queue.put(("done", (key, res.weights, res.epsilon)))


def federated_run(provs, backend: str, rounds: int, w0, arch, dp: DPConfig | None = None) -> dict:
    """One task over HTTP; returns final weights, per-round wall times and DP epsilon."""
    home = Path(tempfile.mkdtemp(prefix="gm-fl-bench-"))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDMART_HOME": str(home)}
    env.pop("GRIDMART_IPFS_API", None)
    server = subprocess.Popen([sys.executable, "-m", "fl_coordinator.server", "--port", str(port),
                               "--home", str(home), "--he-workers", "1"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    procs = []
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/fl/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        owner = Coordinator(url, Account.create().key.hex())
        keyset = he.generate(backend)
        model = from_architecture(arch, w0, **_train_kw())
        task = owner.create_task(name=f"bench-{backend}", model=model, keyset=keyset, rounds=rounds,
                                 min_partners=len(provs), round_seconds=300, dp=dp, seed=0)
        tid = task["task_id"]
        keys = [Account.create().key.hex() for _ in provs]
        for k in keys:
            Coordinator(url, k).join(tid)
        owner.grant_keys(tid, keyset)
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_partner_proc, args=(url, k, tid, p["X"], p["y"], p["Xv"], p["yv"], queue))
                 for k, p in zip(keys, provs)]
        for pr in procs:
            pr.start()
        for _ in procs:  # every partner imported, unsealed its key and waits for round 1
            assert queue.get(timeout=300)[0] == "ready"
        owner.start(tid)
        results = [queue.get(timeout=900)[1] for _ in procs]
        view = owner.task(tid)
        # round time: open -> aggregate stored; round 1 excluded (partner warm-up skew)
        times = [r["aggregated_at"] - r["opened_at"] for r in view["rounds"]]
        weights = results[0][1]
        assert all(np.array_equal(weights, r[1]) for r in results), "partners decrypted different models"
        return {"weights": weights, "round_times": times, "epsilon": results[0][2],
                "agg_seconds": [r["aggregate_seconds"] for r in view["rounds"]],
                "shares_bps": view["final_shares_bps"], "plot": owner.plot_png(tid)}
    finally:
        for pr in procs:
            pr.join(timeout=30)
            if pr.is_alive():
                pr.kill()
        server.terminate()
        server.wait(timeout=15)


def he_aggregation_1m(n_partners=10, n_params=1_000_000) -> dict:
    sk = he.generate("ckks")
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="gm-fl-agg-"))
    paths, vecs = [], []
    for i in range(n_partners):
        v = rng.normal(0, 0.5, n_params)
        p = tmp / f"u{i}.bin"
        p.write_bytes(sk.encrypt(v))
        paths.append(p)
        vecs.append(v)
    counts = list(rng.integers(1000, 20000, n_partners))
    out = {}
    for workers in (1, 2):
        pub = he.load_public("ckks", sk.public_bytes, workers=workers)
        pub.warm_up()
        t0 = time.perf_counter()
        agg = FedAvg().aggregate(pub, paths, counts)
        out[f"workers_{workers}_s"] = time.perf_counter() - t0
        pub.close()
    ref = sum(int(c) * v for c, v in zip(counts, vecs)) / sum(int(c) for c in counts)
    out["max_abs_error"] = float(np.abs(sk.decrypt(agg) - ref).max())
    out["ciphertexts_per_partner"] = -(-n_params // ckks.SLOTS)
    for p in paths:
        p.unlink()
    return out


def fmt(s: dict) -> str:
    return f"{s['accuracy'] * 100:6.1f} {s['recall'] * 100:6.1f} {s['auc']:7.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small data, few rounds (smoke run)")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    scale, rounds = (0.15, 3) if args.quick else (1.0, args.rounds)
    t0 = time.time()
    provs = load_provinces(scale)
    n_feat = provs[0]["X"].shape[1]
    init = FedMLPClassifier(**model_params(), random_state=0).init_weights(n_feat)
    arch, w0 = init.architecture(), init.get_weights()
    print(f"data: {len(provs)} provinces, {sum(len(p['y']) + len(p['yv']) for p in provs)} customers, "
          f"{n_feat} features, model {arch} ({init.n_params} params), {rounds} rounds x {EPOCHS} epochs "
          f"[{time.time() - t0:.0f} s]", flush=True)

    local = {p["name"]: scores(train_rounds(p["X"], p["y"], w0, arch, rounds), arch, [p]) for p in provs}
    pooled = {k: np.vstack([p[k] for p in provs]) if k.startswith("X") else np.concatenate([p[k] for p in provs])
              for k in ("X", "y")}
    central = scores(train_rounds(pooled["X"], pooled["y"], w0, arch, rounds), arch, provs)

    fed_he = federated_run(provs, "ckks", rounds, w0, arch)
    print(f"federated CKKS run done [{time.time() - t0:.0f} s]", flush=True)
    fed_plain = federated_run(provs, "plain", rounds, w0, arch)
    print(f"federated plaintext run done [{time.time() - t0:.0f} s]", flush=True)
    dp = DPConfig(clip=1.0, noise_multiplier=1.0)
    fed_dp = federated_run(provs, "ckks", rounds, w0, arch, dp=dp)
    print(f"federated CKKS+DP run done [{time.time() - t0:.0f} s]", flush=True)
    fed = scores(fed_he["weights"], arch, provs)
    fed_dp_scores = scores(fed_dp["weights"], arch, provs)
    ref = plaintext_fedavg(provs, w0, arch, rounds)
    diff_he = float(np.abs(fed_he["weights"] - ref).max())
    diff_plain_proto = float(np.abs(fed_plain["weights"] - ref).max())
    rt_he = statistics.median(fed_he["round_times"][1:] or fed_he["round_times"])
    rt_plain = statistics.median(fed_plain["round_times"][1:] or fed_plain["round_times"])
    agg = he_aggregation_1m() if not args.quick else he_aggregation_1m(10, 100_000)
    plot = ROOT / "bench" / "fl_theft_convergence.png"
    plot.write_bytes(fed_he["plot"])

    print("\n== electricity-theft detection, 5 non-IID provinces: accuracy % / theft recall % / AUC "
          "on each province's own test split ==")
    print(f"{'province':<10} {'n_train':>7} {'theft':>6} | {'(a) alone':^22} | {'(b) federated+CKKS':^22} | "
          f"{'(c) centralized':^22}")
    for i, p in enumerate(provs):
        print(f"{p['name']:<10} {len(p['y']):>7} {p['y'].mean():>6.3f} | {fmt(local[p['name']]['mean'])} | "
              f"{fmt(fed['per_province'][i])} | {fmt(central['per_province'][i])}")
    loc_mean = {k: float(np.mean([local[p['name']]['mean'][k] for p in provs])) for k in ("accuracy", "recall", "auc")}
    print(f"{'mean':<25} | {fmt(loc_mean)} | {fmt(fed['mean'])} | {fmt(central['mean'])}")
    print(f"{'pooled test':<25} | {'':>22} | {fmt(fed['pooled'])} | {fmt(central['pooled'])}")
    print(f"federated + CKKS + DP (clip={dp.clip}, sigma={dp.noise_multiplier}): mean {fmt(fed_dp_scores['mean'])}, "
          f"epsilon={fed_dp['epsilon']:.2f} at delta={dp.delta:g} per partner over {rounds} rounds")
    print("\n== HE figures ==")
    print(f"max |HE FedAvg - plaintext FedAvg| weights after {rounds} rounds: {diff_he:.3e}  (target <= 1e-6)")
    print(f"max |plaintext protocol - plaintext FedAvg|:                 {diff_plain_proto:.3e}")
    print(f"round wall time (median, rounds 2..{rounds}): HE {rt_he * 1000:.0f} ms, plaintext "
          f"{rt_plain * 1000:.0f} ms, HE adds {100 * (rt_he / rt_plain - 1):+.1f} %  (target <= 10 %)")
    print(f"HE aggregation per round (coordinator, 5 partners x {init.n_params}): "
          f"{1000 * statistics.median(fed_he['agg_seconds']):.1f} ms")
    n_agg = "1,000,000" if not args.quick else "100,000"
    print(f"CKKS aggregation 10 partners x {n_agg} params ({agg['ciphertexts_per_partner']} ct each): "
          f"{agg['workers_2_s']:.2f} s on 2 processes, {agg['workers_1_s']:.2f} s on 1  (target <= 3 s); "
          f"max error {agg['max_abs_error']:.1e}")
    print(f"convergence plot: {plot.relative_to(ROOT)}   total bench time {time.time() - t0:.0f} s")
    figures = {
        "rounds": rounds, "epochs_per_round": EPOCHS, "n_params": init.n_params,
        "provinces": {p["name"]: {"n_train": int(len(p["y"])), "n_test": int(len(p["yv"])),
                                  "theft_rate": float(p["y"].mean()), "alone": local[p["name"]]["mean"],
                                  "federated": fed["per_province"][i], "centralized": central["per_province"][i]}
                      for i, p in enumerate(provs)},
        "alone_mean": loc_mean, "federated_he_mean": fed["mean"], "federated_he_pooled": fed["pooled"],
        "federated_he_dp_mean": fed_dp_scores["mean"], "dp_epsilon": fed_dp["epsilon"], "dp_delta": dp.delta,
        "centralized_mean": central["mean"], "centralized_pooled": central["pooled"],
        "max_abs_diff_he_vs_plain_fedavg": diff_he, "max_abs_diff_plain_protocol_vs_fedavg": diff_plain_proto,
        "round_ms_he": rt_he * 1000, "round_ms_plain": rt_plain * 1000,
        "he_overhead_pct": 100 * (rt_he / rt_plain - 1),
        "round_ms_he_all": [t * 1000 for t in fed_he["round_times"]],
        "round_ms_plain_all": [t * 1000 for t in fed_plain["round_times"]],
        "he_agg_10x1m_s_2proc": agg["workers_2_s"], "he_agg_10x1m_s_1proc": agg["workers_1_s"],
        "he_agg_10x1m_max_error": agg["max_abs_error"], "he_agg_params": 1_000_000 if not args.quick else 100_000,
        "final_task_shares_bps": fed_he["shares_bps"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
