"""Convergence plot of a task: metric per round, federated model vs each partner's local model.

Partners report, after each aggregate, the metric of the decrypted federated
model and of a model trained on their data alone from the same start, both on
their own held-out split. The federated line is the sample-weighted mean.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def render(task_view: dict, metric: str = "auc") -> bytes:
    """PNG bytes for a task (as returned by Task.view())."""
    fed_x, fed_y, local = [], [], {}
    for rnd in task_view["rounds"]:
        ms = rnd.get("metrics") or {}
        if not ms:
            continue
        known = [(m.get("n_val", 1), m["federated"][metric]) for m in ms.values()
                 if m["federated"].get(metric) is not None]  # None: a partner could not compute it
        if known:
            fed_x.append(rnd["round"])
            fed_y.append(sum(w * v for w, v in known) / sum(w for w, _ in known))
        for addr, m in ms.items():
            if m.get("local", {}).get(metric) is not None:
                local.setdefault(addr, ([], []))
                local[addr][0].append(rnd["round"])
                local[addr][1].append(m["local"][metric])
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(fed_x, fed_y, "o-", lw=2.5, color="black", label="federated (weighted mean)")
    for addr, (xs, ys) in sorted(local.items()):
        ax.plot(xs, ys, "--", marker=".", alpha=0.8, label=f"local only {addr[:8]}…")
    ax.set_xlabel("round")
    ax.set_ylabel(f"{metric.upper()} on each partner's held-out data")
    ax.set_title(f"{task_view['name']} ({task_view['backend']})")
    ax.grid(alpha=0.3)
    if fed_x:
        ax.set_xticks(sorted(set(fed_x)))
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
