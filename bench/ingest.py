"""Ingest benchmark: 1 GiB into the embedded store (plain, encrypted) and into a js-ipfs daemon.

Each step runs in its own child process so its peak RSS (VmHWM) is its own; plain
hashlib sha-256 of the same file is the baseline. The last line printed is one
JSON object with every figure.

    .venv/bin/python bench/ingest.py                   # 1 GiB, starts its own daemon
    .venv/bin/python bench/ingest.py --size-mib 64 --ipfs-api /ip4/127.0.0.1/tcp/5001/http
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

TARGETS = {"embedded": 200.0, "embedded_encrypted": 150.0}  # MB/s
RSS_TARGET_MB = 200.0
MB = 1_000_000


def _peak_rss_mb(pid: int | str = "self") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) * 1024 / MB


def _step(name: str, path: Path, work: Path, api: str | None) -> dict:
    """Run one measured operation in this (child) process."""
    from ledger_node.content.embedded import EmbeddedStore

    start = time.perf_counter()
    if name == "sha256":
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        out = {"sha256": digest.hexdigest()}
    elif name == "embedded":
        result = EmbeddedStore(work).put_file(path)
        out = {"cid": result.cid, "sha256": result.sha256}
    elif name == "embedded_encrypted":
        from ledger_node.content.encryption import put_encrypted

        with path.open("rb") as fh:
            put = put_encrypted(EmbeddedStore(work), fh)
        out = {"cid": put.stored.cid, "sha256": put.plaintext_sha256}
    elif name == "embedded_read":
        store = EmbeddedStore(work)
        (cid,) = store.list()
        start = time.perf_counter()  # time the verified read-back only
        out = {"cid": cid, "bytes": store.verify(cid)}
    elif name == "daemon":
        from ledger_node.content.ipfs_rpc import RpcStore

        result = RpcStore(api, timeout=600).put_file(path)
        out = {"cid": result.cid, "sha256": result.sha256}
    else:
        raise SystemExit(f"unknown step {name}")
    out.update(seconds=time.perf_counter() - start, peak_rss_mb=_peak_rss_mb())
    return out


def _run_child(name: str, path: Path, work: Path, api: str | None) -> dict:
    cmd = [sys.executable, __file__, "--step", name, "--file", str(path), "--work", str(work)]
    if api:
        cmd += ["--ipfs-api", api]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"step {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _make_file(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(left, 1 << 20)
            fh.write(os.urandom(n))
            left -= n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--ipfs-api", help="use this daemon instead of starting a js-ipfs one")
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(_step(args.step, args.file, args.work, args.ipfs_api)))
        return

    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="gridmart-ingest-") as tmp:
        tmp = Path(tmp)
        data = tmp / "artifact.bin"
        _make_file(data, size)
        steps = ["sha256", "embedded", "embedded_read", "embedded_encrypted"]
        work = {"sha256": tmp / "none", "embedded": tmp / "plain", "embedded_read": tmp / "plain",
                "embedded_encrypted": tmp / "enc"}
        daemon = None
        api = args.ipfs_api
        if not args.skip_daemon:
            steps.append("daemon")
            work["daemon"] = tmp / "none"
            if api is None:
                from ledger_node.content.daemon import IpfsDaemon

                daemon = IpfsDaemon(tmp / "jsipfs-repo")
                api = daemon.start()
        results = {}
        try:
            for name in steps:
                results[name] = _run_child(name, data, work[name], api)
                if daemon is not None and name == "daemon":
                    results[name]["daemon_peak_rss_mb"] = _peak_rss_mb(daemon.running_pid())
                if name == "embedded_read":
                    shutil.rmtree(work[name], ignore_errors=True)
        finally:
            if daemon is not None:
                daemon.stop()

    baseline = results["sha256"]["sha256"]
    rows = []
    for name, r in results.items():
        r["mb_per_s"] = size / MB / r["seconds"]
        r["sha256_matches_baseline"] = r.get("sha256", baseline) == baseline
        target = TARGETS.get(name)
        r["meets_target"] = None if target is None else (r["mb_per_s"] >= target and r["peak_rss_mb"] <= RSS_TARGET_MB)
        rows.append(name)
    cids = {results[n].get("cid") for n in ("embedded", "daemon") if n in results}
    print(f"ingest of {size / MB:.0f} MB ({args.size_mib} MiB), {os.cpu_count()} cores")
    print(f"{'step':<20} {'MB/s':>9} {'seconds':>8} {'peak RSS MB':>12}  target")
    for name in rows:
        r = results[name]
        target = TARGETS.get(name)
        verdict = "-" if target is None else f">= {target:.0f} MB/s, <= {RSS_TARGET_MB:.0f} MB: {'ok' if r['meets_target'] else 'MISSED'}"
        extra = f" (daemon process peak {r['daemon_peak_rss_mb']:.0f} MB)" if "daemon_peak_rss_mb" in r else ""
        print(f"{name:<20} {r['mb_per_s']:>9.1f} {r['seconds']:>8.2f} {r['peak_rss_mb']:>12.1f}  {verdict}{extra}")
    print(f"embedded and daemon CIDs equal: {len(cids) == 1}" if "daemon" in results else "daemon step skipped")
    summary = {
        "size_bytes": size,
        "cpu_count": os.cpu_count(),
        "cids_equal": len(cids) == 1,
        "steps": {n: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for n, r in results.items()},
    }
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
