#!/usr/bin/env bash
# `make bench`: compare authgate with nginx (plain proxy), HAProxy 2.6
# (jwt_verify) and a Node/Express PropelAuth proxy on this machine, and write
# bench/results/latest.md. Method and figures: docs/performance.md.
#
#   bench/run.sh BUILD_DIR [--quick] [--only NAME[,NAME...]] [--no-write] [--keep-tmp]
#
#   --quick     1 run of 3 s per target instead of 3 runs of DUR (default 10) s
#   --only      nginx authgate haproxy node orgs50 forged garbage p99 rss routes
#               startup stream scaling cors websocket bighead idle (nginx and authgate always run: the
#               ratios need them)
#   DUR=N REPS=N override the run length and repetition count.
#
# Installs nginx, haproxy and wrk (apt) when missing, and the Node peer's
# packages with `npm ci` from bench/node-peer/package-lock.json (skipped with a
# note when npm cannot reach its registry). Everything runs on 127.0.0.1 with
# free ports and a temp dir; every process started is stopped by pid on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    sed -n '2,17p' "$0" >&2
    exit 2
fi
BUILD=$1
shift

for f in "$BUILD/authgate" "$BUILD/ag-echo"; do
    [ -x "$f" ] || { echo "bench: $f is missing; run 'make' first" >&2; exit 1; }
done

need=()
for tool in nginx haproxy wrk openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || need+=("$tool")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "bench: missing ${need[*]}; installing" >&2
    if [ -x scripts/install-deps.sh ]; then
        scripts/install-deps.sh --bench
    elif [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx haproxy wrk
    else
        echo "bench: run as root or: sudo apt-get install -y nginx haproxy wrk" >&2
        exit 1
    fi
fi
# nginx and haproxy live in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

# The distribution's nginx/haproxy services are not ours to touch, and they do
# not matter: every instance here has its own config, ports and temp dir.
# The harness (Python) owns the processes it starts and stops them on exit,
# on Ctrl-C and on SIGTERM; exec keeps the signal path direct.
exec python3 bench/bench.py "$BUILD" "$@"
