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

(cd "$root" && cargo build -q -p c2d-cli -p c2d-examples -p c2d-ffi) || exit 1
if ! command -v pkg-config >/dev/null; then # the C examples are built the way users build
    echo "installing pkg-config (apt)"
    { apt-get install -y -q pkg-config || { apt-get update -q && apt-get install -y -q pkg-config; }; } >/dev/null || exit 1
fi
"$c2d" hub --data-dir "$work/hub" --mqtt-port 0 --amqp-port 0 --https-port 0 --feedback-interval 0s >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do [ -s "$work/hub/endpoints.json" ] && break; sleep 0.1; done
port() { python3 -c "import json; print(json.load(open('$work/hub/endpoints.json'))['$1'])"; }
info() { "$c2d" hub info --data-dir "$work/hub" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
export IOTHUB_CA_FILE=$work/hub/ca.pem
export IOTHUB_SERVICE_CONNECTION_STRING=$(info iothubowner_connection_string)
export C2D_AMQP_PORT=$(port amqp_port) C2D_HTTPS_PORT=$(port https_port)
passed=0 failed=0

# run_pair NAME DEVICE_COMMAND BACKEND_COMMAND: the device handles what the back-end sends
# (each command is split into words: paths without spaces).
run_pair() {
    local name=$1 device_cs dev b d
    device_cs=$("$c2d" device create "example-$name" --endpoint "localhost:$C2D_HTTPS_PORT")
    IOTHUB_DEVICE_CONNECTION_STRING=$device_cs C2D_TRANSPORT=amqp C2D_PORT=$C2D_AMQP_PORT C2D_COUNT=3 \
        $2 >"$work/$name-device.out" 2>&1 &
    dev=$!
    C2D_DEVICE_ID=example-$name $3 >"$work/$name-backend.out" 2>&1
    b=$?
    wait $dev; d=$?
    if [ $((b | d)) = 0 ]; then passed=$((passed + 1)); echo "PASS $name"; else
        failed=$((failed + 1)); echo "FAIL $name"; cat "$work/$name-device.out"; fi
    cat "$work/$name-backend.out"
}

run_pair rust "$root/target/debug/c2d-example-device" "$root/target/debug/c2d-example-backend"

# C: installed with `make install` into a prefix, built with pkg-config as a user would.
if make -s -C "$root" install PREFIX="$work/prefix" PROFILE=debug >"$work/install.log" 2>&1; then
    export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
    built=1
    for prog in device backend; do
        # shellcheck disable=SC2046
        gcc -std=c11 -Wall -Wextra -Werror "$root/examples/c/$prog.c" -o "$work/c-$prog" \
            $(pkg-config --cflags --libs c2d) -Wl,-rpath,"$work/prefix/lib" || built=0
    done
    if [ $built = 1 ]; then run_pair c "$work/c-device" "$work/c-backend"
    else failed=$((failed + 1)); echo "FAIL c (build)"; fi
else
    failed=$((failed + 1)); echo "FAIL c (make install)"; cat "$work/install.log"
fi

# Python: the c2d package installed by pip into a virtualenv, as a user would.
c2d_py=${C2D_PYTHON:-}
[ -n "$c2d_py" ] || c2d_py=$("$root/scripts/python-env.sh") || c2d_py=
if [ -n "$c2d_py" ]; then
    run_pair python "$c2d_py $root/examples/python/device.py" "$c2d_py $root/examples/python/backend.py"
    run_pair python-asyncio "$c2d_py $root/examples/python/device_asyncio.py" "$c2d_py $root/examples/python/backend.py"
else
    failed=$((failed + 1)); echo "FAIL python (installing the c2d package)"
fi

# Node.js: the c2d package installed by npm into a project, as a user would.
node_modules=${C2D_NODE_MODULES:-}
[ -n "$node_modules" ] || node_modules=$("$root/scripts/node-env.sh") || node_modules=
if [ -n "$node_modules" ]; then
    export NODE_PATH=$node_modules
    run_pair node "node $root/examples/node/device.js" "node $root/examples/node/backend.js"
else
    failed=$((failed + 1)); echo "FAIL node (installing the c2d package)"
fi

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
