#!/usr/bin/env bash
# Runs the example applications against a local hub (on free ports): each language's device
# application receives what its back-end sends, and the back-end checks every outcome.
# Prints a closing "N passed, N failed" line.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
c2d=${C2D_BIN:-$root/target/debug/c2d}
work=$(mktemp -d)
hub_pid=
cleanup() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null && wait "$hub_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

(cd "$root" && cargo build -q -p c2d-cli -p c2d-examples) || exit 1
"$c2d" hub --data-dir "$work/hub" --mqtt-port 0 --amqp-port 0 --https-port 0 --feedback-interval 0s >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do [ -s "$work/hub/endpoints.json" ] && break; sleep 0.1; done
port() { python3 -c "import json; print(json.load(open('$work/hub/endpoints.json'))['$1'])"; }
info() { "$c2d" hub info --data-dir "$work/hub" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
export IOTHUB_CA_FILE=$work/hub/ca.pem
export IOTHUB_SERVICE_CONNECTION_STRING=$(info iothubowner_connection_string)
export C2D_AMQP_PORT=$(port amqp_port) C2D_HTTPS_PORT=$(port https_port)
passed=0 failed=0

name=rust
device_cs=$("$c2d" device create example-rust --endpoint "localhost:$C2D_HTTPS_PORT")
IOTHUB_DEVICE_CONNECTION_STRING=$device_cs C2D_TRANSPORT=amqp C2D_PORT=$C2D_AMQP_PORT C2D_COUNT=3 \
    "$root/target/debug/c2d-example-device" >"$work/$name-device.out" 2>&1 &
dev=$!
C2D_DEVICE_ID=example-rust "$root/target/debug/c2d-example-backend" >"$work/$name-backend.out" 2>&1
b=$?
wait $dev; d=$?
if [ $((b | d)) = 0 ]; then passed=$((passed + 1)); echo "PASS $name"; else
    failed=$((failed + 1)); echo "FAIL $name"; cat "$work/$name-device.out" "$work/$name-backend.out"; fi
cat "$work/$name-backend.out"

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
