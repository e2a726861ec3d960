#!/usr/bin/env bash
# Install what authgate needs to build and test on Debian/Ubuntu.
#
#   scripts/install-deps.sh [--bench] [--test] [--conformance]
#
# Idempotent and fast when everything is present: packages are checked with
# dpkg-query first, and `apt-get update` runs (once) only when something is
# missing. Needs root only when it has something to install.
#   --bench        also nginx, haproxy, wrk (peers and load generator for bench/)
#   --test         also nginx, caddy (the proxies test_forward_auth_proxies.py runs)
#   --conformance  also nodejs, npm (the PropelAuth library conformance tests)
set -euo pipefail

want_bench=0
want_conformance=0
want_test=0
for arg in "$@"; do
    case "$arg" in
        --bench) want_bench=1 ;;
        --conformance) want_conformance=1 ;;
        --test) want_test=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install-deps: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

base_pkgs=(
    build-essential pkg-config ca-certificates
    libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev check
    python3 python3-yaml openssl curl clang clang-format valgrind
    python3-websockets  # tests/integration/test_websocket.py
)
[ "$want_bench" = 1 ] && base_pkgs+=(nginx haproxy wrk)
[ "$want_conformance" = 1 ] && base_pkgs+=(nodejs npm)
[ "$want_test" = 1 ] && base_pkgs+=(nginx caddy)

log() { echo "install-deps: $*" >&2; }

if ! command -v dpkg-query >/dev/null 2>&1; then
    # Not Debian-like: we cannot install, but a machine that already has the
    # libraries must still be able to `make run`.
    if command -v pkg-config >/dev/null 2>&1 &&
        pkg-config --exists libmicrohttpd libcurl openssl jansson yaml-0.1 check &&
        command -v cc >/dev/null && command -v make >/dev/null && command -v python3 >/dev/null; then
        log "no dpkg here; the build libraries are present, continuing"
        exit 0
    fi
    log "this script installs with apt (Debian/Ubuntu). On this system install the"
    log "equivalents of: ${base_pkgs[*]}"
    exit 1
fi

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

updated=0
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        log "missing packages: $*"
        log "run as root:  sudo $0 $(printf '%q ' "${orig_args[@]+"${orig_args[@]}"}")"
        log "or install them yourself: sudo apt-get install -y $*"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "$updated" = 0 ]; then
        log "apt-get update"
        apt-get update -q
        updated=1
    fi
    log "apt-get install $*"
    apt-get install -y -q --no-install-recommends "$@"
}
orig_args=("$@")

# Some tools count as present when their command exists, whatever package
# provided it: a nodejs from another repository bundles npm and conflicts
# with Debian's npm package.
satisfied_by_command() {
    case "$1" in
        nodejs) command -v node >/dev/null 2>&1 ;;
        npm) command -v npm >/dev/null 2>&1 ;;
        *) return 1 ;;
    esac
}

missing=()
for p in "${base_pkgs[@]}"; do
    is_installed "$p" || satisfied_by_command "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# libFuzzer's runtime ships in a package named after the clang version
# (libclang-rt-N-dev on Debian 12; inside libclang-common-N-dev on older
# Ubuntu), so ask the installed clang whether it already finds the library.
fuzzer_rt_present() {
    local f
    f=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
    [ -n "$f" ] && [ -f "$f" ] && return 0
    f=$(clang -print-runtime-dir 2>/dev/null || true)
    [ -n "$f" ] && ls "$f"/libclang_rt.fuzzer*.a >/dev/null 2>&1
}

if command -v clang >/dev/null 2>&1 && ! fuzzer_rt_present; then
    major=$(clang -dumpversion | cut -d. -f1)
    pkg=""
    for cand in "libclang-rt-$major-dev" "libclang-common-$major-dev"; do
        if is_installed "$cand"; then continue; fi
        if [ "$updated" = 0 ] && [ "$(id -u)" = 0 ]; then
            export DEBIAN_FRONTEND=noninteractive
            log "apt-get update"
            apt-get update -q
            updated=1
        fi
        if apt-cache show "$cand" >/dev/null 2>&1; then pkg=$cand; break; fi
    done
    if [ -n "$pkg" ] && [ "$(id -u)" != 0 ]; then
        # Only fuzzing needs it; do not block `make run` for a non-root user.
        log "warning: $pkg (libFuzzer runtime) is missing; as root: apt-get install $pkg"
    elif [ -n "$pkg" ]; then
        apt_install "$pkg"
    else
        log "warning: no libFuzzer runtime package found for clang $major; fuzz targets will not link"
    fi
fi

# The CORS browser test (tests/integration/test_cors_browser.py) drives
# headless Chromium and skips without it, so a failed install only warns.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        (apt_install chromium) || log "warning: chromium could not be installed; the browser CORS test will skip"
    else
        log "warning: chromium is missing (the browser CORS test will skip); as root: apt-get install chromium"
    fi
fi

log "all dependencies present"
