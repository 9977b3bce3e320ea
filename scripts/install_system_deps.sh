#!/usr/bin/env bash
# Debian packages, only those missing; needs root (or sudo) the first time.
#   install_system_deps.sh run    what `make up` needs: Node.js and npm (the devnet, the compiler, js-ipfs)
#   install_system_deps.sh test   and what the tests and benches need besides: Chromium (browser tests),
#                                 PostgreSQL (database tests) and wrk (bench/redeem.py's load generator,
#                                 which falls back to a Python one without it)
set -euo pipefail
what=${1:-test}
case "$what" in run|test) ;; *) echo "usage: $0 run|test" >&2; exit 2 ;; esac
missing=()
command -v node >/dev/null || missing+=(nodejs npm)
if [ "$what" = test ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v wrk >/dev/null || missing+=(wrk)
fi
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
