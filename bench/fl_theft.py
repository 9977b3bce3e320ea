"""Benchmark of the federated-learning zone on electricity-theft detection (seed 003 §3.4 table).

The federation of analytics/data/federation.py (docs/fl.md): five provinces, 50,000 SGCC-format
customers (2,000 to 20,000 each), different regimes and theft rates, and each province has
caught only one or two of the six theft techniques; every province is scored on a test set of
its own customers holding all six (half of them thieves). Prints accuracy / recall / AUC of
(a) each province alone, (b) federated with CKKS over the real HTTP protocol (coordinator
process + five partner processes) under the task's Strategy (FedProx), (c) centralized on
pooled data, beside the seed's figures; FedAvg against FedProx (in memory, same schedule);
(d) federated with CKKS and partner-level differential privacy at two settings; the max
|HE - plaintext| weight difference after the same rounds; the round wall time and CPU time
with and without HE; HE aggregation time for 10 partners x 1,000,000 parameters on 1 and 2
processes; and the floor of HE's cost per round: SEAL's own work for the same operations.
Last line: one JSON object with every figure.

The round times are comparable by construction: one coordinator process and one
process per province serve every task (same warm-up, same polling, one BLAS
thread each since six processes share the cores), a discarded warm-up task takes
first-call costs, HE and plaintext tasks alternate in the order HE P, P HE, HE P...
so that a drift in the machine's load cancels, and the figure is the median over
rounds 2..R of all tasks of a backend (round 1 includes every partner's start).
The CPU time per round of the coordinator and the partners is printed as well: it
hardly moves when other work shares the machine, which wall time does.

Run: PYTHONPATH=. .venv/bin/python bench/fl_theft.py [--quick]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import tenseal as ts
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.data.federation import federation  # noqa: E402
from analytics.theft.features import extract_features  # noqa: E402
from fl_coordinator import he  # noqa: E402
from fl_coordinator.dp import CUSTOMER_DELTA, DPConfig  # noqa: E402
from fl_coordinator.he import ckks  # noqa: E402
from fl_coordinator.model import FedMLPClassifier, from_architecture  # noqa: E402
from fl_coordinator.partner import Coordinator, evaluate, run_partner  # noqa: E402
from fl_coordinator.strategy import FedAvg, FedProx  # noqa: E402

HIDDEN, LR, EPOCHS, BATCH = (32,), 0.05, 1, 32
#: FedProx's proximal weight: with each province holding other theft techniques, plain FedAvg's
#: averaged model is less sure of thieves than the pooled one (same AUC, lower recall at 0.5);
#: mu = 0.01 keeps the local models near enough to the global one (see the FedAvg row)
PROX_MU = 0.01
#: the seed's table (003 §3.4): provinces alone and federated, accuracy / recall in %
SEED = {"alone": {"accuracy": 55.5, "recall": 57.8}, "federated": {"accuracy": 80.6, "recall": 64.3}}
#: DP rows (clip C, noise multiplier sigma, rounds). Partner-level DP with five partners: noise of
#: sigma*C per coordinate on ~1,000 weights against an update of norm <= C. Updates have a median
#: norm of ~0.5, so C = 0.1 (always clipping, like a normalized step) with more rounds of smaller
#: steps lets later local training undo earlier noise. epsilon ~ 40 costs ~0.04 AUC; epsilon <= 10
#: is reachable only with a heavy loss (see docs/fl.md, "Differential privacy").
DP_SETTINGS = ((0.1, 0.8, 20), (0.05, 2.75, 30))
DP_DELTA = 1e-5
#: customer-level DP-SGD inside every partner (clip C per customer's gradient, noise multiplier
#: sigma, batches Poisson-sampled at rate batch / n): epsilon per customer at dp.CUSTOMER_DELTA
#: is largest in the smallest province (5.5 for Hainan's 1,500 training customers)
DP_SGD = (3.0, 1.0)
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def load_provinces(scale: float, days: int) -> list[dict]:
    """Each province: its training data split 75/25 into train and validation (stratified),
    standardized with its own training statistics, and its all-techniques test set likewise."""
    out = []
    for i, (province, train, test) in enumerate(federation(scale, days)):
        X, y = extract_features(train), train["FLAG"].to_numpy(int)
        X, Xv, y, yv = train_test_split(X, y, test_size=0.25, stratify=y, random_state=i)
        scaler = StandardScaler().fit(X)
        out.append(dict(name=province.name, seen=province.attacks_seen, X=scaler.transform(X), y=y,
                        Xv=scaler.transform(Xv), yv=yv, Xt=scaler.transform(extract_features(test)),
                        yt=test["FLAG"].to_numpy(int)))
    return out


def model_params() -> dict:
    return dict(hidden=HIDDEN, lr=LR, epochs=EPOCHS, batch_size=BATCH)


def scores(weights: np.ndarray, arch: dict, provs: list[dict]) -> dict:
    """On each province's test set (all six techniques) and on their union."""
    m = from_architecture(arch, weights)
    per = [evaluate(m, p["Xt"], p["yt"]) for p in provs]
    pooled = evaluate(m, np.vstack([p["Xt"] for p in provs]), np.concatenate([p["yt"] for p in provs]))
    return {"per_province": per, "mean": {k: float(np.mean([s[k] for s in per])) for k in per[0]},
            "pooled": pooled}


def train_rounds(X, y, w0, arch, rounds, seed=0, each=None) -> np.ndarray:
    """The same local schedule a partner runs: one partial_fit per round with seed*100003+r;
    `each(w)` sees the weights after every round."""
    w = w0
    for r in range(1, rounds + 1):
        w = from_architecture(arch, w, random_state=seed * 100_003 + r, **_train_kw()).partial_fit(X, y).get_weights()
        if each is not None:
            each(w)
    return w


def _train_kw() -> dict:
    return dict(lr=LR, epochs=EPOCHS, batch_size=BATCH)


#: the federated tasks' rule; alone and centralized train the same model without it
STRATEGY = FedProx(PROX_MU, **_train_kw())


def plaintext_rounds(provs, w0, arch, rounds, rule: FedAvg, seed=0, each=None) -> tuple[np.ndarray, float]:
    """The task's rounds in memory under `rule` (what the protocol must reproduce); also the
    median L2 norm of the partners' updates (what a DP clip bounds). `each(w)` sees every round's model."""
    w, norms = w0, []
    weights = rule.weights([len(p["y"]) for p in provs])
    for r in range(1, rounds + 1):
        local = [from_architecture(arch, w, random_state=seed * 100_003 + r, **rule.configure_round(r))
                 .partial_fit(p["X"], p["y"]).get_weights() for p in provs]
        norms += [float(np.linalg.norm(lw - w)) for lw in local]
        w = sum(float(pi) * lw for pi, lw in zip(weights, local))
        if each is not None:
            each(w)
    return w, statistics.median(norms)


def rounds_png(curves: dict[str, list[float]], alone: dict[str, list[float]]) -> bytes:
    """Mean test accuracy per round: federated, centralized, and each province alone."""
    import io

    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.6), dpi=120)
    for name, ys in alone.items():
        ax.plot(range(1, len(ys) + 1), [100 * y for y in ys], "--", lw=1, alpha=0.7, label=f"{name} alone")
    ax.plot(range(1, len(curves["federated"]) + 1), [100 * y for y in curves["federated"]], "o-", lw=2.5,
            color="black", ms=3, label="federated (mean of provinces)")
    ax.plot(range(1, len(curves["centralized"]) + 1), [100 * y for y in curves["centralized"]], "-", lw=2,
            color="tab:red", label="centralized (pooled data)")
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("accuracy % on the all-techniques test sets")
    ax.set_title("Electricity theft: provinces alone vs federated vs centralized")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# -- the real protocol: coordinator process + partner processes ------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wallet(name: str) -> str:
    """A fixed wallet key per role, so reruns draw the same DP noise (it is seeded by address)."""
    return "0x" + hashlib.sha256(f"gridmart-fl-bench/{name}".encode()).hexdigest()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _partner_loop(url, key, X, y, Xv, yv, inbox, outbox):
    """One province's partner: takes part in every task id it is sent, until None."""
    threadpool_limits(1)
    coord = Coordinator(url, key)

    def log(line: str) -> None:
        if line.startswith("ready:"):  # key unsealed, model fetched, waiting for round 1
            outbox.put(("ready", key))

    for task_id in iter(inbox.get, None):
        try:
            res = run_partner(coord, task_id, X, y, Xv, yv, log=log)
        except Exception as exc:  # the bench stops at once instead of waiting for a timeout
            outbox.put(("error", key, f"{type(exc).__name__}: {exc}"))
        else:
            outbox.put(("done", key, res.weights, res.epsilon, res.customer_epsilon))


class Federation:
    """A coordinator process and one partner process per province, serving every task of the bench."""

    def __init__(self, provs: list[dict]):
        self.home = Path(tempfile.mkdtemp(prefix="gm-fl-bench-"))
        port = _free_port()
        env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT), "GRIDMART_HOME": str(self.home)}
        env.pop("GRIDMART_IPFS_API", None)
        self.server = subprocess.Popen([sys.executable, "-m", "fl_coordinator.server", "--port", str(port),
                                        "--home", str(self.home)], cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        self.procs: list = []
        try:
            for _ in range(300):
                try:
                    if httpx.get(self.url + "/fl/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            self.owner = Coordinator(self.url, _wallet("owner"))
            self.members = [Coordinator(self.url, _wallet(p["name"])) for p in provs]
            ctx = mp.get_context("spawn")
            self.outbox = ctx.Queue()
            self.inboxes = [ctx.Queue() for _ in provs]
            self.procs = [ctx.Process(target=_partner_loop, args=(self.url, m.key, p["X"], p["y"], p["Xv"],
                                                                  p["yv"], q, self.outbox))
                          for m, p, q in zip(self.members, provs, self.inboxes)]
            for pr in self.procs:
                pr.start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Federation:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _collect(self, kind: str) -> list[tuple]:
        msgs = []
        for _ in self.procs:
            msg = self.outbox.get(timeout=900)
            if msg[0] == "error":
                raise RuntimeError(f"partner {msg[1][:10]} failed: {msg[2]}")
            assert msg[0] == kind, msg[0]
            msgs.append(msg)
        return msgs

    def cpu_seconds(self) -> np.ndarray:
        """CPU used so far by the coordinator and by the partners: unlike wall time, it hardly
        moves when other work shares the machine."""
        return np.array([_cpu_seconds(self.server.pid), sum(_cpu_seconds(pr.pid) for pr in self.procs)])

    def run(self, backend: str, rounds: int, w0, arch, dp: DPConfig | None = None, seed: int = 0,
            strategy: FedAvg | None = None) -> dict:
        """One task over HTTP; returns final weights, per-round wall and CPU times and the DP epsilon."""
        keyset = he.generate(backend)
        model = from_architecture(arch, w0, **_train_kw())
        task = self.owner.create_task(name=f"bench-{backend}", model=model, keyset=keyset, rounds=rounds,
                                      min_partners=len(self.procs), round_seconds=300, strategy=strategy or STRATEGY,
                                      dp=dp, seed=seed)
        tid = task["task_id"]
        for m in self.members:
            m.join(tid)
        self.owner.grant_keys(tid, keyset)
        for q in self.inboxes:
            q.put(tid)
        self._collect("ready")
        cpu0 = self.cpu_seconds()  # from here on: the rounds only, not the key and model set-up
        self.owner.start(tid)
        results = self._collect("done")
        cpu = self.cpu_seconds() - cpu0
        view = self.owner.task(tid)
        weights = results[0][2]
        assert all(np.array_equal(weights, r[2]) for r in results), "partners decrypted different models"
        return {"task_id": tid, "weights": weights, "epsilon": results[0][3],
                "customer_epsilon": max(r[4] for r in results) if results[0][4] is not None else None,
                "round_times": [r["aggregated_at"] - r["opened_at"] for r in view["rounds"]],
                "cpu_per_round": cpu / rounds,
                "agg_seconds": [r["aggregate_seconds"] for r in view["rounds"]],
                "shares_bps": view["final_shares_bps"]}

    def plot_png(self, task_id: str) -> bytes:
        return self.owner.plot_png(task_id)

    def close(self) -> None:
        for q in getattr(self, "inboxes", []):
            q.put(None)
        for pr in self.procs:
            pr.join(timeout=30)
            if pr.is_alive():
                pr.kill()
        for c in [getattr(self, "owner", None), *getattr(self, "members", [])]:
            if c is not None:
                c.close()
        self.server.terminate()
        self.server.wait(timeout=15)
        shutil.rmtree(self.home, ignore_errors=True)


def round_ms(runs: list[dict]) -> dict:
    """Median round wall time (round opened -> aggregate stored) over rounds 2..R of these tasks,
    and the median CPU time per round of the coordinator and of the partners."""
    per_task = [[1000 * t for t in r["round_times"][1:] or r["round_times"]] for r in runs]
    return {"median": statistics.median([t for ts in per_task for t in ts]),
            "per_task": [statistics.median(ts) for ts in per_task], "all": per_task,
            "cpu": [1000 * float(np.median([r["cpu_per_round"][i] for r in runs])) for i in (0, 1)]}


def dp_row(cfg: DPConfig, rounds: int, runs: list[dict], eps: float) -> dict:
    """One DP setting: metrics averaged over runs with different noise draws, and the AUC spread."""
    avg = {part: {k: float(np.mean([r[part][k] for r in runs])) for k in runs[0][part]} for part in ("mean", "pooled")}
    return {"clip": cfg.clip, "noise_multiplier": cfg.noise_multiplier, "rounds": rounds, "delta": cfg.delta,
            "epsilon": eps, "runs": len(runs), **avg, "auc_range": [min(r["mean"]["auc"] for r in runs),
                                                                     max(r["mean"]["auc"] for r in runs)]}


def times_ms(fn, repeat: int) -> list[float]:
    """Wall time of `repeat` calls of fn, in ms each."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def he_unit_costs(n_params: int, repeat: int = 21) -> dict:
    """What HE adds per partner and round at this model size: encrypt, decrypt (median ms), bytes sent."""
    sk = he.generate("ckks")
    w = np.random.default_rng(0).normal(0, 0.3, n_params)
    ct = sk.encrypt(w)

    def median_ms(fn) -> float:
        return statistics.median(times_ms(fn, repeat))

    return {"encrypt_ms": median_ms(lambda: sk.encrypt(w)), "decrypt_ms": median_ms(lambda: sk.decrypt(ct)),
            "update_bytes": len(ct), "plain_update_bytes": len(he.generate("plain").encrypt(w))}


def seal_floor(n_params: int, repeat: int = 51) -> dict:
    """SEAL's own cost of the same CKKS operations (tenseal.sealapi: the SEAL build inside TenSEAL,
    no wrapper), and TenSEAL's (de)serialization of one ciphertext (SEAL's built-in zstd, which
    TenSEAL does not let us switch off): the HE work no change to our code can remove. Each figure
    is the fastest of `repeat` runs: a floor, and robust to this machine's slow spells."""
    from tenseal import sealapi as seal

    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(ckks.POLY_MODULUS)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(ckks.POLY_MODULUS, ckks.COEFF_MOD_BITS))
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    secret = seal.KeyGenerator(ctx).secret_key()
    encoder, encryptor = seal.CKKSEncoder(ctx), seal.Encryptor(ctx, secret)
    decryptor, evaluator = seal.Decryptor(ctx, secret), seal.Evaluator(ctx)
    values = np.random.default_rng(0).normal(0, 0.3, n_params).tolist()
    pt, weight, out = seal.Plaintext(), seal.Plaintext(), seal.Plaintext()
    ct, weighted = seal.Ciphertext(), seal.Ciphertext()
    encoder.encode(values, 2.0 ** ckks.SCALE_BITS, pt)
    encoder.encode(0.2, 2.0 ** ckks.SCALE_BITS, weight)
    encryptor.encrypt_symmetric(pt, ct)
    tenseal_ctx = ts.context_from(he.generate("ckks").secret_bytes)
    vec = ts.ckks_vector(tenseal_ctx, values)
    blob = vec.serialize()

    def fastest_ms(fn) -> float:
        return min(times_ms(fn, repeat))

    def weigh() -> None:  # the coordinator's p_i * H(g_i) + ... for one update
        evaluator.multiply_plain(ct, weight, weighted)
        evaluator.add_inplace(weighted, weighted)  # (an add of two such products)

    return {"encode_ms": fastest_ms(lambda: encoder.encode(values, 2.0 ** ckks.SCALE_BITS, pt)),
            "encrypt_ms": fastest_ms(lambda: encryptor.encrypt_symmetric(pt, ct)),
            "decrypt_ms": fastest_ms(lambda: decryptor.decrypt(ct, out)),
            "decode_ms": fastest_ms(lambda: encoder.decode_double(out)),
            "weigh_ms": fastest_ms(weigh),
            "serialize_ms": fastest_ms(vec.serialize),
            "load_ms": fastest_ms(lambda: ts.ckks_vector_from(tenseal_ctx, blob))}


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
        agg = FedAvg().aggregate(pub, paths, FedAvg.weights(counts))
        out[f"workers_{workers}_s"] = time.perf_counter() - t0
        pub.close()
    ref = sum(int(c) * v for c, v in zip(counts, vecs)) / sum(int(c) for c in counts)
    out["max_abs_error"] = float(np.abs(sk.decrypt(agg) - ref).max())
    out["ciphertexts_per_partner"] = -(-n_params // ckks.SLOTS)
    shutil.rmtree(tmp)
    return out


def fmt(s: dict) -> str:
    return f"{s['accuracy'] * 100:6.1f} {s['recall'] * 100:6.1f} {s['auc']:7.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small data, few rounds (smoke run)")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--days", type=int, default=1035, help="days per customer (the SGCC set's 1,035)")
    ap.add_argument("--pairs", type=int, default=3, help="HE/plaintext task pairs timed (order HE P P HE HE P ...)")
    ap.add_argument("--dp-runs", type=int, help="runs per DP setting, averaged (default 3; 1 with --quick)")
    args = ap.parse_args()
    scale, rounds, days = (0.15, 5, 365) if args.quick else (1.0, args.rounds, args.days)
    n_dp = args.dp_runs or (1 if args.quick else 3)
    t0 = time.time()
    provs = load_provinces(scale, days)
    n_feat = provs[0]["X"].shape[1]
    init = FedMLPClassifier(**model_params(), random_state=0).init_weights(n_feat)
    arch, w0 = init.architecture(), init.get_weights()
    print(f"data: {len(provs)} provinces, {sum(len(p['y']) + len(p['yv']) for p in provs)} customers "
          f"(+ {sum(len(p['yt']) for p in provs)} in the test sets), {days} days, "
          f"{n_feat} features, model {arch} ({init.n_params} params), {rounds} rounds x {EPOCHS} epochs "
          f"[{time.time() - t0:.0f} s]", flush=True)

    per_round: dict[str, list[float]] = {"federated": [], "centralized": []}
    alone_rounds: dict[str, list[float]] = {p["name"]: [] for p in provs}
    local = {p["name"]: scores(train_rounds(p["X"], p["y"], w0, arch, rounds, each=lambda w, p=p: alone_rounds[
        p["name"]].append(scores(w, arch, [p])["mean"]["accuracy"])), arch, [p]) for p in provs}
    pooled = {k: np.vstack([p[k] for p in provs]) if k.startswith("X") else np.concatenate([p[k] for p in provs])
              for k in ("X", "y")}
    central = scores(train_rounds(pooled["X"], pooled["y"], w0, arch, rounds, each=lambda w: per_round[
        "centralized"].append(scores(w, arch, provs)["mean"]["accuracy"])), arch, provs)
    ref, update_norm = plaintext_rounds(provs, w0, arch, rounds, STRATEGY, each=lambda w: per_round[
        "federated"].append(scores(w, arch, provs)["mean"]["accuracy"]))
    fedavg = scores(plaintext_rounds(provs, w0, arch, rounds, FedAvg(**_train_kw()))[0], arch, provs)

    dp_cfgs = [(DPConfig(c, s, DP_DELTA), r) for c, s, r in DP_SETTINGS]
    with Federation(provs) as fed:
        fed.run("ckks", 2, w0, arch)  # warm-up, discarded
        runs = {"ckks": [], "plain": []}
        for i in range(args.pairs):
            for backend in ("ckks", "plain") if i % 2 == 0 else ("plain", "ckks"):
                runs[backend].append(fed.run(backend, rounds, w0, arch))
        he_runs, plain_runs = runs["ckks"], runs["plain"]
        print(f"federated runs ({args.pairs} x HE + plaintext) done [{time.time() - t0:.0f} s]", flush=True)
        dp_runs = [[fed.run("ckks", r, w0, arch, dp=cfg, seed=k) for k in range(n_dp)] for cfg, r in dp_cfgs]
        dp_sgd_run = fed.run("ckks", rounds, w0, arch, strategy=FedProx(PROX_MU, **_train_kw(), dp_clip=DP_SGD[0],
                                                                      dp_noise=DP_SGD[1]))
        print(f"federated CKKS+DP runs done [{time.time() - t0:.0f} s]", flush=True)
        plot_png = fed.plot_png(he_runs[0]["task_id"])
    fed_he, fed_plain = he_runs[0], plain_runs[0]
    fed = scores(fed_he["weights"], arch, provs)
    dp_sgd = {"clip": DP_SGD[0], "noise_multiplier": DP_SGD[1], "delta": CUSTOMER_DELTA,
              "epsilon": dp_sgd_run["customer_epsilon"], **scores(dp_sgd_run["weights"], arch, provs)["mean"]}
    dp_rows = [dp_row(cfg, r, [scores(run["weights"], arch, provs) for run in reps], reps[0]["epsilon"])
               for (cfg, r), reps in zip(dp_cfgs, dp_runs)]
    diff_he = float(np.abs(fed_he["weights"] - ref).max())
    diff_plain_proto = float(np.abs(fed_plain["weights"] - ref).max())
    rt_he, rt_plain = round_ms(he_runs), round_ms(plain_runs)
    overhead = 100 * (rt_he["median"] / rt_plain["median"] - 1)
    cpu_overhead = 100 * (sum(rt_he["cpu"]) / sum(rt_plain["cpu"]) - 1)
    unit = he_unit_costs(init.n_params)
    floor = seal_floor(init.n_params)
    n_partners = len(provs)
    floor_partner_ms = sum(floor[k] for k in ("encode_ms", "encrypt_ms", "serialize_ms", "load_ms", "decrypt_ms",
                                              "decode_ms"))
    floor_round_ms = n_partners * (floor_partner_ms + floor["load_ms"] + floor["weigh_ms"]) + floor["serialize_ms"]
    floor_pct = 100 * floor_round_ms / sum(rt_plain["cpu"])
    agg_ms = 1000 * statistics.median([s for run in he_runs for s in run["agg_seconds"]])
    agg_ms_plain = 1000 * statistics.median([s for run in plain_runs for s in run["agg_seconds"]])
    agg = he_aggregation_1m() if not args.quick else he_aggregation_1m(10, 100_000)
    plot = ROOT / "bench" / "fl_theft_convergence.png"
    plot.write_bytes(plot_png)
    rounds_plot = ROOT / "bench" / "fl_theft_rounds.png"  # the federated curve: the task's rule in memory,
    rounds_plot.write_bytes(rounds_png(per_round, alone_rounds))  # which the HE run matches to 1e-7

    print("\n== electricity-theft detection, 5 provinces that each caught other theft techniques: accuracy % / "
          "theft recall % / AUC on each province's test set (all six techniques, half thieves) ==")
    print(f"{'province':<12} {'n_train':>7} {'theft':>5} {'seen':<32} | {'(a) alone':^22} | "
          f"{'(b) federated+CKKS':^22} | {'(c) centralized':^22}")
    for i, p in enumerate(provs):
        print(f"{p['name']:<12} {len(p['y']):>7} {p['y'].mean():>5.3f} {','.join(p['seen']):<32} | "
              f"{fmt(local[p['name']]['mean'])} | {fmt(fed['per_province'][i])} | {fmt(central['per_province'][i])}")
    loc_mean = {k: float(np.mean([local[p['name']]['mean'][k] for p in provs])) for k in ("accuracy", "recall", "auc")}
    print(f"{'mean':<59} | {fmt(loc_mean)} | {fmt(fed['mean'])} | {fmt(central['mean'])}")
    print(f"{'pooled test':<59} | {'':>22} | {fmt(fed['pooled'])} | {fmt(central['pooled'])}")
    print(f"{'seed 003 §3.4 (10,000 customers per province, a neural network)':<59} | "
          f"{SEED['alone']['accuracy']:6.1f} {SEED['alone']['recall']:6.1f} {'':>7} | "
          f"{SEED['federated']['accuracy']:6.1f} {SEED['federated']['recall']:6.1f} {'':>7} |")
    gain, gap = 100 * (fed["mean"]["accuracy"] - loc_mean["accuracy"]), 100 * (central["mean"]["accuracy"] - fed["mean"]["accuracy"])
    print(f"federated - alone: {gain:+.1f} accuracy points (target >= +15; the seed: +25.1); centralized - "
          f"federated: {gap:+.1f} (target <= 2)")
    print(f"strategy: FedProx mu={PROX_MU} {fmt(fed['mean'])} vs plain FedAvg (in memory, same schedule) "
          f"{fmt(fedavg['mean'])}: FedProx {'helps' if fed['mean']['accuracy'] > fedavg['mean']['accuracy'] else 'does not help'} "
          f"({100 * (fed['mean']['accuracy'] - fedavg['mean']['accuracy']):+.1f} accuracy points)")
    print(f"\n== (d) federated + CKKS + DP: each partner clips its update to L2 norm C and adds N(0, (sigma C)^2); "
          f"epsilon per partner at delta={DP_DELTA:g}; mean of {n_dp} run(s) (median update norm without DP: "
          f"{update_norm:.2f}) ==")
    print(f"{'C':>5} {'sigma':>5} {'rounds':>6} {'epsilon':>7} | {'mean of provinces':^22} | {'pooled test':^22} | "
          f"AUC range")
    print(f"{'-':>5} {'-':>5} {rounds:>6} {'inf':>7} | {fmt(fed['mean'])} | {fmt(fed['pooled'])} |")
    for row in dp_rows:
        print(f"{row['clip']:>5g} {row['noise_multiplier']:>5g} {row['rounds']:>6} {row['epsilon']:>7.2f} | "
              f"{fmt(row['mean'])} | {fmt(row['pooled'])} | {row['auc_range'][0]:.3f}-{row['auc_range'][1]:.3f}")
    loss = 100 * (fed["mean"]["accuracy"] - dp_sgd["accuracy"])
    print(f"\n== (e) federated + CKKS + customer-level DP-SGD in every partner (per-customer gradient clip "
          f"{DP_SGD[0]:g}, noise multiplier {DP_SGD[1]:g}, Poisson batches): epsilon per customer "
          f"{dp_sgd['epsilon']:.2f} at delta {CUSTOMER_DELTA:g} (the largest over the provinces; target <= 8) ==")
    print(f"mean of provinces {fmt(dp_sgd)} vs {fmt(fed['mean'])} without DP: {loss:+.1f} accuracy points lost "
          f"(target <= 3)")
    print("\n== HE figures ==")
    print(f"max |HE protocol - plaintext rule| weights after {rounds} rounds: {diff_he:.3e}  (target <= 1e-6)")
    print(f"max |plaintext protocol - plaintext rule|:                  {diff_plain_proto:.3e}")
    print(f"round wall time (median of rounds 2..{rounds} of {args.pairs} tasks each): HE {rt_he['median']:.0f} ms, "
          f"plaintext {rt_plain['median']:.0f} ms, HE adds {overhead:+.1f} %  (target <= 10 %); per task: HE "
          f"{' / '.join(f'{t:.0f}' for t in rt_he['per_task'])} ms, plaintext "
          f"{' / '.join(f'{t:.0f}' for t in rt_plain['per_task'])} ms")
    print(f"CPU per round, coordinator + 5 partners (median of tasks): HE {sum(rt_he['cpu']):.0f} ms "
          f"({rt_he['cpu'][0]:.0f} + {rt_he['cpu'][1]:.0f}), plaintext {sum(rt_plain['cpu']):.0f} ms "
          f"({rt_plain['cpu'][0]:.0f} + {rt_plain['cpu'][1]:.0f}), HE adds {cpu_overhead:+.1f} %")
    print(f"HE cost per partner and round ({init.n_params} params): encrypt {unit['encrypt_ms']:.1f} ms, decrypt "
          f"{unit['decrypt_ms']:.1f} ms, update {unit['update_bytes'] / 1024:.0f} KiB (plaintext "
          f"{unit['plain_update_bytes'] / 1024:.0f} KiB); coordinator aggregation of 5 updates {agg_ms:.1f} ms "
          f"(plaintext {agg_ms_plain:.1f} ms)")
    print(f"floor, SEAL's own work (tenseal.sealapi, same build): per partner and round encode "
          f"{floor['encode_ms']:.2f} + encrypt {floor['encrypt_ms']:.2f} + save {floor['serialize_ms']:.2f} + load "
          f"{floor['load_ms']:.2f} + decrypt {floor['decrypt_ms']:.2f} + decode {floor['decode_ms']:.2f} = "
          f"{floor_partner_ms:.1f} ms; coordinator per update load + weigh {floor['load_ms'] + floor['weigh_ms']:.2f} "
          f"ms -> {floor_round_ms:.0f} ms CPU per round of {n_partners} partners = {floor_pct:.1f} % of the plaintext "
          f"round's CPU (measured: {sum(rt_he['cpu']) - sum(rt_plain['cpu']):+.0f} ms)")
    n_agg = "1,000,000" if not args.quick else "100,000"
    print(f"CKKS aggregation 10 partners x {n_agg} params ({agg['ciphertexts_per_partner']} ct each): "
          f"{agg['workers_2_s']:.2f} s on 2 processes, {agg['workers_1_s']:.2f} s on 1  (target <= 3 s); "
          f"max error {agg['max_abs_error']:.1e}")
    print(f"convergence plot (partners' reports): {plot.relative_to(ROOT)}; alone / federated / centralized per "
          f"round: {rounds_plot.relative_to(ROOT)}   total bench time {time.time() - t0:.0f} s")
    figures = {
        "rounds": rounds, "epochs_per_round": EPOCHS, "n_params": init.n_params, "days": days,
        "strategy": STRATEGY.terms(), "customers_per_province": [int(len(p["y"]) + len(p["yv"])) for p in provs],
        "federated_minus_alone_accuracy_points": gain, "centralized_minus_federated_accuracy_points": gap,
        "fedavg_plain_mean": fedavg["mean"], "seed_table": SEED,
        "provinces": {p["name"]: {"n_train": int(len(p["y"])), "n_val": int(len(p["yv"])), "n_test": int(len(p["yt"])),
                                  "attacks_seen": list(p["seen"]),
                                  "theft_rate": float(p["y"].mean()), "alone": local[p["name"]]["mean"],
                                  "federated": fed["per_province"][i], "centralized": central["per_province"][i]}
                      for i, p in enumerate(provs)},
        "alone_mean": loc_mean, "federated_he_mean": fed["mean"], "federated_he_pooled": fed["pooled"],
        "centralized_mean": central["mean"], "centralized_pooled": central["pooled"],
        "dp": dp_rows, "median_update_norm": update_norm,
        "dp_customer": {**dp_sgd, "accuracy_loss_points": loss},
        "accuracy_per_round": {**per_round, "alone": alone_rounds},
        "max_abs_diff_he_vs_plain_fedavg": diff_he, "max_abs_diff_plain_protocol_vs_fedavg": diff_plain_proto,
        "round_ms_he": rt_he["median"], "round_ms_plain": rt_plain["median"], "he_overhead_pct": overhead,
        "round_ms_he_per_task": rt_he["per_task"], "round_ms_plain_per_task": rt_plain["per_task"],
        "round_ms_he_all": rt_he["all"], "round_ms_plain_all": rt_plain["all"],
        "round_cpu_ms_he": dict(zip(("coordinator", "partners"), rt_he["cpu"])),
        "round_cpu_ms_plain": dict(zip(("coordinator", "partners"), rt_plain["cpu"])),
        "he_cpu_overhead_pct": cpu_overhead,
        "he_encrypt_ms": unit["encrypt_ms"], "he_decrypt_ms": unit["decrypt_ms"],
        "he_update_bytes": unit["update_bytes"], "plain_update_bytes": unit["plain_update_bytes"],
        "seal_floor_ms": floor, "seal_floor_round_cpu_ms": floor_round_ms, "seal_floor_round_cpu_pct": floor_pct,
        "he_agg_round_ms": agg_ms, "plain_agg_round_ms": agg_ms_plain,
        "he_agg_10x1m_s_2proc": agg["workers_2_s"], "he_agg_10x1m_s_1proc": agg["workers_1_s"],
        "he_agg_10x1m_max_error": agg["max_abs_error"], "he_agg_params": 1_000_000 if not args.quick else 100_000,
        "final_task_shares_bps": fed_he["shares_bps"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
