#!/usr/bin/env bash
# Differential conformance run against @propelauth/node (see README.md here).
#
#   tests/conformance/run.sh [BUILD_DIR]        (make conformance)
#   env: SEED (1), CASES (10000), ONLY=i (replay one case), MAX_PRINT (10),
#        KEEP=1 (keep the generated config/key), SELFTEST=0 (skip the self-test)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
bin="$build/authgate"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac

say() { echo "conformance: $*" >&2; }

if [ ! -x "$bin" ]; then
    say "no $bin; run make first (make conformance builds it)"
    exit 2
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "node/npm missing; installing them with scripts/install-deps.sh --conformance"
    bash "$repo/scripts/install-deps.sh" --conformance
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    say "node $(node --version) is too old (need 18 or later for the library and base64url)"
    exit 2
fi

# npm ci only when the installed tree is not the locked one.
cd "$here"
stamp=node_modules/.authgate-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "npm ci (pinned by tests/conformance/package-lock.json)"
    if ! npm ci --no-audit --no-fund --loglevel=error; then
        say "npm ci failed: the npm registry ($(npm config get registry)) must be reachable"
        say "to install @propelauth/node and tslib; nothing was compared"
        exit 2
    fi
    echo "$want" >"$stamp"
fi

# The comparison must be able to fail: corrupt some of authgate's answers and
# require every corruption to be reported.
if [ "${SELFTEST:-1}" = 1 ] && [ -z "${ONLY:-}" ]; then
    CASES=700 MUTATE=1 node conformance.js "$bin" | tail -n 1
fi
exec node conformance.js "$bin"
