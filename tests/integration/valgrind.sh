#!/bin/sh
# Run a subset of the integration suite with authgate under valgrind and report
# leaks and memory errors. A definite leak or an invalid access makes authgate
# exit 99 on SIGTERM; the harness reports that exit code and the valgrind
# output (stderr tail) as a teardown failure of the class that started it.
#
#   tests/integration/valgrind.sh [BUILD_DIR] [-k PATTERN ...]
#
# BUILD_DIR defaults to build (not build/san: valgrind and ASan do not mix).
# Without -k, a subset that walks every request path runs: allow/deny,
# identity, protocol errors, framing, limits, upstream faults, reload, and the
# forward-auth listener's own server.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind missing; installing it with scripts/install-deps.sh"
    bash "$here/../../scripts/install-deps.sh" || exit 2
fi
if [ $# -eq 0 ]; then
    set -- -k test_sec_paths.SecPaths -k test_sec_org.SecOrg -k test_sec_framing \
        -k test_sec_headers -k test_sec_upstream -k test_sec_limits.SecLimits \
        -k test_sec_config.SecReload -k test_tokens -k test_identity_strip \
        -k test_forward_auth_listener
fi
supp="$here/valgrind.supp"
AG_WRAP="valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite \
--show-leak-kinds=definite --error-exitcode=99 --num-callers=30 --trace-children=no \
--suppressions=$supp"
export AG_WRAP
# timing-sensitive assertions get the slack a 20-50x slower daemon needs
export AG_VALGRIND=1
status=0
python3 "$here/run.py" --build "$build" "$@" || status=$?
if [ $status -eq 0 ]; then
    echo "valgrind: no definite leaks and no memory errors in authgate"
else
    echo "valgrind: failures above (an exit code 99 on SIGTERM means valgrind found leaks or errors)"
fi
exit $status
