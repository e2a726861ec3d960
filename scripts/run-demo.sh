#!/usr/bin/env bash
# The `make run` demo: start the echo upstream, mint demo tokens, print
# paste-able curl commands, then run authgate on config/demo.yaml in the
# foreground. Ctrl-C stops both.
#
#   scripts/run-demo.sh [BUILD_DIR]      (default: build)
#
# Everything here is demo-only: config/demo/signing-key.pem is a published
# private key, so tokens it signs prove nothing outside this demo.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${1:-build}
CONFIG=config/demo.yaml
KEY=config/demo/signing-key.pem
ECHO_PORT=9000
STATE="$BUILD/demo"

die() { echo "run-demo: $*" >&2; exit 1; }

for f in "$BUILD/authgate" "$BUILD/ag-echo"; do
    [ -x "$f" ] || die "$f is missing; run 'make' first (or use 'make run')"
done
[ -f "$CONFIG" ] || die "$CONFIG is missing"
[ -f "$KEY" ] || die "$KEY is missing"

# The demo config is the source of truth for the listen address and issuer.
yaml_value() {
    sed -n "s/^[[:space:]]*$1:[[:space:]]*\"\{0,1\}\([^\"#[:space:]]*\)\"\{0,1\}.*/\1/p" "$CONFIG" | head -n1
}
LISTEN=$(yaml_value listen)
LISTEN=${LISTEN:-127.0.0.1:8080}
ISSUER=$(yaml_value issuer)
ISSUER=${ISSUER:-https://auth.demo.authgate.local}
GW_HOST=${LISTEN%:*}
GW_PORT=${LISTEN##*:}
[ "$GW_HOST" = 0.0.0.0 ] && GW_HOST=127.0.0.1
BASE="http://$GW_HOST:$GW_PORT"

port_busy() {
    # A successful connect means something already listens there.
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
if port_busy "$GW_HOST" "$GW_PORT"; then
    die "port $GW_PORT on $GW_HOST is already in use (another authgate or demo still running?).
    Find it with: ss -ltnp 'sport = :$GW_PORT'"
fi
if port_busy 127.0.0.1 "$ECHO_PORT"; then
    die "port $ECHO_PORT (the demo upstream) is already in use.
    Find it with: ss -ltnp 'sport = :$ECHO_PORT'"
fi

if ! "$BUILD/authgate" check -c "$CONFIG" >/dev/null; then
    "$BUILD/authgate" check -c "$CONFIG" || true
    die "$CONFIG does not validate"
fi

mkdir -p "$STATE"
echo_pid=""
# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
    if [ -n "$echo_pid" ] && kill -0 "$echo_pid" 2>/dev/null; then
        kill -TERM "$echo_pid" 2>/dev/null || true
        wait "$echo_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$BUILD/ag-echo" --port "$ECHO_PORT" --listen 127.0.0.1 >"$STATE/echo.log" 2>&1 &
echo_pid=$!
for _ in $(seq 50); do
    port_busy 127.0.0.1 "$ECHO_PORT" && break
    kill -0 "$echo_pid" 2>/dev/null || die "ag-echo exited; see $STATE/echo.log"
    sleep 0.1
done
port_busy 127.0.0.1 "$ECHO_PORT" || die "ag-echo did not start listening; see $STATE/echo.log"

# Fixed ids so the printed commands stay the same from run to run.
ORG=1189c444-8a2d-4c41-8b4b-ae43ce79a492
ORG_NAME=Acme
TTL=3600
mint() {
    "$BUILD/authgate" mint --key "$KEY" --issuer "$ISSUER" --ttl "$TTL" "$@" ||
        die "authgate mint failed"
}
ALICE=$(mint --user-id 31c41c16-c281-44ae-9602-8a047e3bf33d --email alice@example.com \
    --org "$ORG:$ORG_NAME:Admin:can_view_billing")
BOB=$(mint --user-id 2a8e5f0b-6f3c-4d54-9d1e-0c7b1b0f4a11 --email bob@example.com \
    --org "$ORG:$ORG_NAME:Member")
CAROL=$(mint --user-id 8f14e45f-ceea-467f-a0e6-3b7c9a1d2e55 --email carol@example.com \
    --org "$ORG:$ORG_NAME:Owner")

umask 077
cat >"$STATE/env.sh" <<EOF
# demo tokens (valid ${TTL}s from $(date -u +%H:%M:%SZ)); source me: . $STATE/env.sh
export AG=$BASE
export ORG=$ORG
export ALICE=$ALICE
export BOB=$BOB
export CAROL=$CAROL
EOF

cat <<EOF

================================ authgate demo ================================
 gateway   $BASE        (config: $CONFIG)
 upstream  http://127.0.0.1:$ECHO_PORT   (ag-echo: replies with what it received,
                                     log in $STATE/echo.log)
 tokens    alice = Admin of $ORG_NAME + can_view_billing,  bob = Member,  carol = Owner
           signed with the DEMO key $KEY, valid for ${TTL}s

 In another terminal, load the tokens:

   . $PWD/$STATE/env.sh

 ALLOW (200, the upstream echoes the X-User / X-Org it received):
   curl -s -H "Authorization: Bearer \$ALICE" \$AG/api/whoami
   curl -s -H "Authorization: Bearer \$ALICE" \$AG/api/org/\$ORG/billing
   curl -s -X DELETE -H "Authorization: Bearer \$CAROL" \$AG/api/org/\$ORG   # exact role Owner
   curl -s \$AG/api/feed                       # optional_user: no token, no X-User

 401 (no token / garbage token):
   curl -si \$AG/api/whoami
   curl -si -H "Authorization: Bearer not.a.token" \$AG/api/whoami

 403 (bob is a Member: the routes need Admin / can_view_billing;
      alice is Admin, but DELETE needs exactly Owner):
   curl -si -H "Authorization: Bearer \$BOB" \$AG/api/org/\$ORG/admin/settings
   curl -si -H "Authorization: Bearer \$BOB" \$AG/api/org/\$ORG/billing
   curl -si -X DELETE -H "Authorization: Bearer \$ALICE" \$AG/api/org/\$ORG

 A forged identity header is stripped before the upstream sees it:
   curl -s -H "Authorization: Bearer \$BOB" -H 'X-User: {"user_id":"admin"}' \$AG/api/whoami

 Mint more tokens (DEMO key only):
   $BUILD/authgate mint --key $KEY --issuer $ISSUER \\
       --user-id U1 --email u1@example.com --org $ORG:$ORG_NAME:Admin:can_view_billing --ttl 3600

 Ctrl-C stops the gateway and the upstream.
===============================================================================

EOF

# Not exec: the EXIT trap has to outlive authgate to stop ag-echo.
set +e
"$BUILD/authgate" run -c "$CONFIG"
rc=$?
exit "$rc"
