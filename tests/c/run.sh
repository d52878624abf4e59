#!/usr/bin/env bash
# The C tests: builds libc2d (debug), checks it exports only c2d_* symbols, then builds the
# test programs as plain C11 with -Wall -Wextra -Werror and runs each three ways: as is, under
# valgrind (no leaks, no errors) and with AddressSanitizer + UBSan. Then the firmware build
# (`make lib HUB=0 TRANSPORTS=mqtt`, size-optimised): its size, its symbols, and a device
# program on it against a `c2d hub` process, the same three ways; and the peak memory of
# examples/c/device on it receiving 150 messages (printed, not asserted).
# Prints a closing "c: N passed, N failed" line.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --locked -q -p c2d-ffi || exit 1
lib=$root/target/debug
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
result() { # name status
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}

others=$(nm -D --defined-only "$lib/libc2d.so" | awk '{print $3}' | grep -v '^c2d_' || true)
exported=$(nm -D --defined-only "$lib/libc2d.so" | awk '{print $3}' | grep -c '^c2d_')
if [ -n "$others" ]; then echo "libc2d.so exports more than c2d_*:"; echo "$others" | head; result symbols 1
else echo "libc2d.so exports $exported symbols, all c2d_*"; result symbols 0; fi

# without the hub (C2D_NO_HUB, as `make install HUB=0` sets), the header still serves the
# device and service API and hides c2d_hub_*
if gcc -std=c11 -Wall -Wextra -Werror -fsyntax-only -DC2D_NO_HUB -I"$root/include" examples/c/device.c examples/c/backend.c &&
    ! printf '#include "c2d.h"\nint main(void) { c2d_hub *h = 0; return c2d_hub_start(0, &h); }\n' |
        gcc -std=c11 -Werror -fsyntax-only -DC2D_NO_HUB -I"$root/include" -x c - 2>/dev/null; then
    result "header without the hub" 0
else result "header without the hub" 1; fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -I"$root/include" -DC2D_CRATE_VERSION="\"$version\"")
libs=(-L"$lib" -Wl,-rpath,"$lib" -lc2d -lpthread)
# --fair-sched: valgrind runs one thread at a time, and its default lock lets a thread that
# spins (tokio's workers do, briefly) starve the others for minutes.
valgrind_flags=(--quiet --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --suppressions="$root/tests/c/valgrind.supp")
for test in errors misuse scenarios; do
    gcc "${cflags[@]}" "tests/c/$test.c" -o "$out/$test" "${libs[@]}" || { result "$test (build)" 1; continue; }
    gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer "tests/c/$test.c" \
        -o "$out/$test-asan" "${libs[@]}" || { result "$test (asan build)" 1; continue; }
    "$out/$test" >"$out/$test.log" 2>&1; s=$?
    [ "$s" = 0 ] || cat "$out/$test.log"; result "$test" "$s"
    valgrind "${valgrind_flags[@]}" "$out/$test" >"$out/$test-valgrind.log" 2>&1; s=$?
    [ "$s" = 0 ] || tail -60 "$out/$test-valgrind.log"; result "$test (valgrind)" "$s"
    ASAN_OPTIONS=detect_leaks=1 "$out/$test-asan" >"$out/$test-asan.log" 2>&1; s=$?
    [ "$s" = 0 ] || tail -60 "$out/$test-asan.log"; result "$test (asan)" "$s"
done

# --- the firmware build: no hub, no service client, MQTT and MQTT/WS only ------------------
fw_transports=mqtt
make -s lib HUB=0 TRANSPORTS=$fw_transports >"$out/firmware-build.log" 2>&1 || { cat "$out/firmware-build.log"; result "firmware (build)" 1; }
fw=$root/target/firmware
if [ -f "$fw/libc2d.so" ]; then
    echo "firmware: libc2d.so (HUB=0 TRANSPORTS=$fw_transports, stripped) is $(stat -c %s "$fw/libc2d.so") bytes"
    symbols=$(nm -D --defined-only "$fw/libc2d.so" | awk '{print $3}')
    if grep -q '^c2d_device_client_connect$' <<<"$symbols" && ! grep -qE '^c2d_(hub|service)_' <<<"$symbols" &&
        ! grep -qv '^c2d_' <<<"$symbols"; then result "firmware symbols (device only)" 0
    else echo "$symbols" | grep -E '^c2d_(hub|service)_|^[^c]' | head; result "firmware symbols (device only)" 1; fi
    fw_cflags=("${cflags[@]}" -DC2D_NO_HUB -DC2D_NO_SERVICE)
    fw_libs=(-L"$fw" -Wl,-rpath,"$fw" -lc2d -lpthread)
    # what the firmware header hides: the service client
    if ! printf '#include "c2d.h"
int main(void) { c2d_service_client *s = 0; (void)s; return 0; }
' |
        gcc -std=c11 -Werror -fsyntax-only -DC2D_NO_HUB -DC2D_NO_SERVICE -I"$root/include" -x c - 2>/dev/null; then
        result "firmware header hides the service client" 0
    else result "firmware header hides the service client" 1; fi
    c2d=$root/target/debug/c2d
    cargo build --locked -q -p c2d-cli || exit 1
    "$c2d" hub --data-dir "$out/hub" --mqtt-port 0 --amqp-port 0 --https-port 0 --feedback-interval 0s --max-queue-depth 200 \
        >"$out/hub.log" 2>&1 &
    hub_pid=$!
    trap 'kill $hub_pid 2>/dev/null; wait $hub_pid 2>/dev/null; rm -rf "$out"' EXIT
    for _ in $(seq 100); do [ -s "$out/hub/endpoints.json" ] && break; sleep 0.1; done
    endpoint() { python3 -c "import json; print(json.load(open('$out/hub/endpoints.json'))['$1'])"; }
    export IOTHUB_CA_FILE=$out/hub/ca.pem IOTHUB_SERVICE_CONNECTION_STRING
    IOTHUB_SERVICE_CONNECTION_STRING=$("$c2d" hub info --data-dir "$out/hub" --json |
        python3 -c "import json,sys; print(json.load(sys.stdin)['iothubowner_connection_string'])")
    service=(--amqp-port "$(endpoint amqp_port)" --https-port "$(endpoint https_port)")
    fw_cs=$("$c2d" device create firmware --endpoint "localhost:$(endpoint https_port)")
    # queue N messages with ack=full, run the device program, then expect N Success records
    fw_round() { # name transport port runner...
        local name=$1 transport=$2 port=$3 n=4 body="firmware message" s feedback
        shift 3
        "$c2d" send --device firmware --count $n --ack full --property kind=firmware "${service[@]}" "$body" >/dev/null
        C2D_TEST_CONNECTION_STRING=$fw_cs C2D_TEST_CA_FILE=$IOTHUB_CA_FILE C2D_TEST_PORT=$port \
            C2D_TEST_TRANSPORTS=$fw_transports C2D_TEST_TRANSPORT=$transport C2D_TEST_COUNT=$n C2D_TEST_BODY=$body \
            "$@" >"$out/$name.log" 2>&1; s=$?
        feedback=$("$c2d" feedback --device firmware --count $n --json "${service[@]}" 2>&1 | grep -c '"Success"')
        [ "$s" = 0 ] && [ "$feedback" = $n ] || { s=1; tail -40 "$out/$name.log"; echo "feedback: $feedback of $n Success"; }
        result "$name" "$s"
    }
    if gcc "${fw_cflags[@]}" tests/c/firmware.c -o "$out/firmware" "${fw_libs[@]}" &&
        gcc "${fw_cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer tests/c/firmware.c \
            -o "$out/firmware-asan" "${fw_libs[@]}"; then
        fw_round "firmware (mqtt)" mqtt "$(endpoint mqtt_port)" "$out/firmware"
        fw_round "firmware (mqtt_ws)" mqtt_ws "$(endpoint https_port)" "$out/firmware"
        fw_round "firmware (valgrind)" mqtt "$(endpoint mqtt_port)" valgrind "${valgrind_flags[@]}" "$out/firmware"
        fw_round "firmware (asan)" mqtt_ws "$(endpoint https_port)" env ASAN_OPTIONS=detect_leaks=1 "$out/firmware-asan"
    else result "firmware (test build)" 1; fi
    # the example device application on the firmware library: its peak RSS over 150 messages
    if gcc "${fw_cflags[@]}" examples/c/device.c -o "$out/device" "${fw_libs[@]}"; then
        "$c2d" send --device firmware --count 150 --property command=reboot "${service[@]}" '{"at": "now"}' >/dev/null
        rss=$(IOTHUB_DEVICE_CONNECTION_STRING=$fw_cs C2D_TRANSPORT=mqtt C2D_PORT=$(endpoint mqtt_port) C2D_COUNT=150 \
            python3 -c '
# VmHWM of the running program, read until it exits (a child'"'"'s ru_maxrss would count the
# Python process it was forked from)
import subprocess, sys, time
p = subprocess.Popen([sys.argv[1]], stdout=subprocess.DEVNULL)
peak = 0
while p.poll() is None:
    try:
        for line in open("/proc/%d/status" % p.pid):
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    except (OSError, ValueError):
        pass
    time.sleep(0.01)
print(p.returncode, peak)' "$out/device")
        echo "firmware: examples/c/device peak RSS receiving 150 messages over MQTT: ${rss#* } KiB"
        result "firmware example device (150 messages)" "${rss%% *}"
    else result "firmware example device (build)" 1; fi
    kill $hub_pid 2>/dev/null; wait $hub_pid 2>/dev/null
fi
echo "c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
