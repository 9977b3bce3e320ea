#!/usr/bin/env python3
"""Start / stop / inspect the local js-ipfs daemon (a thin wrapper on ledger_node.content.daemon).

    .venv/bin/python scripts/ipfs_daemon.py start   # prints: export GRIDMART_IPFS_API=/ip4/127.0.0.1/tcp/N/http
    .venv/bin/python scripts/ipfs_daemon.py status
    .venv/bin/python scripts/ipfs_daemon.py stop

The repo lives in $GRIDMART_HOME/ipfs (override with --repo); the log is <repo>/daemon.log.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger_node.config import get_settings  # noqa: E402
from ledger_node.content.daemon import IpfsDaemon  # noqa: E402
from ledger_node.errors import GridMartError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--repo", type=Path, default=None, help="repo folder (default: $GRIDMART_HOME/ipfs)")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    args = parser.parse_args()
    daemon = IpfsDaemon(args.repo or get_settings().home / "ipfs", api_port=args.port)
    try:
        if args.action == "start":
            print(f"export GRIDMART_IPFS_API={daemon.start()}")
        elif args.action == "stop":
            daemon.stop()
            print("stopped")
        elif daemon.running_pid():
            print(f"running pid {daemon.running_pid()} api {daemon.api()} log {daemon.log_path}")
        else:
            print("not running")
            return 3
    except GridMartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
