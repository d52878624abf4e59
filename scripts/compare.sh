#!/usr/bin/env bash
# c2d next to its peers, on this machine, in one run:
#
#  1. Mosquitto (Debian's package, installed if missing) behind TLS with `persistence true`,
#     which keeps QoS 1 messages in memory and writes nothing per message: it snapshots its
#     memory to disk every `autosave_interval` (1 800 s by default; man mosquitto.conf), so a
#     crash loses what came since the last snapshot. It is the in-memory ceiling, not a
#     durable peer. Against the same workload shape as `c2d bench` (N QoS 1 subscribers, one
#     QoS 1 publisher, M messages of S bytes, K publishes in flight; load from
#     `c2d bench --broker`, built on rumqttc), then `c2d bench` itself over MQTT with fsync
#     durability (every accepted message on disk or delivered and completed before its send
#     is answered) and with OS durability; prints each figure, each broker's CPU time per
#     message (its own process only, from /proc, counted over the load) and c2d's ratios to
#     Mosquitto, rate and CPU per message.
#  2. Draining P messages queued for a device on one c2d hub over MQTT, completing each and
#     printing it as a JSON line: the official Python device SDK (azure-iot-device, in a
#     virtualenv), c2d's Python DeviceClient (blocking and asyncio; the c2d package built
#     with the release profile) and c2d's Rust DeviceClient (`c2d receive`); prints each
#     receive rate, the CPU time the receiving process spent per message
#     (scripts/drain-rate.py) and the ratios.
#  3. Sending Q messages (each answered by the hub, no feedback) on a hub on IoT Hub's own
#     ports (azure-iot-hub cannot use others; skipped when they are taken): the official
#     Python service SDK (azure-iot-hub, uamqp; it has no asyncio API, so its loop) and c2d's
#     Python ServiceClient, one after another and all at once (c2d.aio, asyncio.gather).
#  4. On that hub (the official Node SDKs cannot use other ports either): draining P queued
#     messages over MQTT with the official Node device SDK (azure-iot-device +
#     azure-iot-device-mqtt) and with c2d's Node DeviceClient (the c2d package built with the
#     release profile; `for await` awaiting each complete, and 'message' events as the
#     official SDK is used), each message completed and printed as a JSON line, with the CPU
#     per message as in 2; then sending Q messages with azure-iothub and with c2d's Node
#     ServiceClient, one after another and all at once (Promise.all over one client).
#
#   scripts/compare.sh [--devices N] [--messages M] [--size S] [--in-flight K]
#                      [--python-messages P] [--send-messages Q] [--skip-broker | --broker-only]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

devices=10 messages=20000 size=256 in_flight=16 py_messages=20000 send_messages=2000 broker=1 others=1
while [ $# -gt 0 ]; do
    case $1 in
        --devices) devices=$2 ;;
        --messages) messages=$2 ;;
        --size) size=$2 ;;
        --in-flight) in_flight=$2 ;;
        --python-messages) py_messages=$2 ;;
        --send-messages) send_messages=$2 ;;
        --skip-broker) broker=0; shift; continue ;;
        --broker-only) others=0; shift; continue ;;
        *) echo "usage: $0 [--devices N] [--messages M] [--size S] [--in-flight K] [--python-messages P] [--send-messages Q] [--skip-broker | --broker-only]" >&2; exit 2 ;;
    esac
    shift 2
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if [ $broker = 1 ] && { ! command -v mosquitto >/dev/null || ! command -v openssl >/dev/null; }; then
    echo "compare: installing mosquitto and openssl (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto openssl >/dev/null
fi
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)

echo "compare: building c2d (release)"
cargo build -q --release -p c2d-cli
c2d=$root/target/release/c2d

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# a process's CPU time (user + system) in clock ticks (1/100 s), from /proc/PID/stat
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

# --- 1. Mosquitto, then c2d, same workload ------------------------------------------------
if [ $broker = 1 ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=compare CA" \
        -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -days 2 -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null
    chmod 644 "$work"/*.key "$work"/*.pem
    mkdir -p "$work/mosquitto" && chmod 777 "$work/mosquitto"
    port=$(free_port)
    cat >"$work/mosquitto.conf" <<EOF
listener $port 127.0.0.1
cafile $work/ca.pem
certfile $work/server.pem
keyfile $work/server.key
allow_anonymous true
persistence true
persistence_location $work/mosquitto/
max_queued_messages 0
max_inflight_messages 16
EOF
    "$mosquitto" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

    shape=(--devices "$devices" --messages "$messages" --size "$size" --in-flight "$in_flight")
    echo "compare: Mosquitto $("$mosquitto" -h 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' | head -1), ${shape[*]}"
    cpu_before=$(cpu_ticks "${pids[-1]}")
    mq=$("$c2d" bench --broker "localhost:$port" --ca-file "$work/ca.pem" "${shape[@]}" --json)
    mq_cpu_us=$(python3 -c 'import sys; print("%.1f" % ((int(sys.argv[2]) - int(sys.argv[1])) * 1e4 / int(sys.argv[3])))' \
        "$cpu_before" "$(cpu_ticks "${pids[-1]}")" "$messages")
    echo "compare: c2d bench (fsync)"
    fsync=$("$c2d" bench "${shape[@]}" --durability fsync --json)
    echo "compare: c2d bench (os)"
    os=$("$c2d" bench "${shape[@]}" --durability os --json)
fi

row() { # name json [broker CPU us per message]
    printf '  %-36s %10.0f msg/s   p50 %6.2f ms   p99 %6.2f ms   broker CPU %6.1f us/msg\n' "$1" \
        "$(field '["messages_per_second"]' <<<"$2")" \
        "$(field '["latency_ms"]["p50"]' <<<"$2")" "$(field '["latency_ms"]["p99"]' <<<"$2")" \
        "${3:-$(field '["hub_cpu_us_per_message"]' <<<"$2")}"
}
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
print_broker() {
    local mq_rate
    mq_rate=$(field '["messages_per_second"]' <<<"$mq")
    echo "c2d compared, ${shape[*]}, TLS everywhere:"
    row "Mosquitto QoS 1 (in memory)" "$mq" "$mq_cpu_us"
    row "c2d hub, MQTT devices, fsync" "$fsync"
    row "c2d hub, MQTT devices, os" "$os"
    echo "  Mosquitto 'persistence true' snapshots its memory every autosave_interval (1 800 s): nothing on disk per message"
    echo "  ratio c2d/Mosquitto, rate: fsync $(ratio "$(field '["messages_per_second"]' <<<"$fsync")" "$mq_rate"), os $(ratio "$(field '["messages_per_second"]' <<<"$os")" "$mq_rate")"
    echo "  ratio c2d/Mosquitto, CPU per message: fsync $(ratio "$(field '["hub_cpu_us_per_message"]' <<<"$fsync")" "$mq_cpu_us"), os $(ratio "$(field '["hub_cpu_us_per_message"]' <<<"$os")" "$mq_cpu_us")"
}
if [ $others = 0 ]; then
    [ $broker = 1 ] && echo && print_broker
    exit 0
fi

# --- 2. the official Python device SDK next to c2d's DeviceClient -------------------------
venv=$root/tests/interop/.deps/venv
tests/interop/install.sh python node
"$c2d" hub --data-dir "$work/hub" --mqtt-port 0 --amqp-port 0 --https-port 0 \
    --max-queue-depth $((py_messages + 10)) >"$work/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f "$work/hub/endpoints.json" ] && break; sleep 0.1; done
info=$("$c2d" hub info --data-dir "$work/hub" --json)
export IOTHUB_SERVICE_CONNECTION_STRING IOTHUB_CA_FILE
IOTHUB_SERVICE_CONNECTION_STRING=$(field '["iothubowner_connection_string"]' <<<"$info")
IOTHUB_CA_FILE=$(field '["ca_file"]' <<<"$info")
mqtt_port=$(field '["mqtt_port"]' <<<"$info")
https=localhost:$(field '["https_port"]' <<<"$info")
amqp_port=$(field '["amqp_port"]' <<<"$info")

# "<messages/s> <messages> <client CPU us per message>", between the client's first and last
# message line (scripts/drain-rate.py)
receive_rate() { # device command...
    local device=$1
    shift
    local cs
    cs=$("$c2d" device create "$device" --endpoint "$https")
    "$c2d" send --device "$device" --count "$py_messages" --amqp-port "$amqp_port" \
        --https-port "${https#*:}" "{\"reading\": 21.5, \"unit\": \"C\"}" >/dev/null
    scripts/drain-rate.py env IOTHUB_DEVICE_CONNECTION_STRING="$cs" "$@"
}
echo "compare: azure-iot-device (Python) receiving $py_messages queued messages"
py=$(receive_rate py-device C2D_COUNT="$py_messages" IOTHUB_MQTT_PORT="$mqtt_port" TIMEOUT_S=600 \
    "$venv/bin/python" -u tests/interop/python/device_receive.py)
echo "compare: c2d Python DeviceClient receiving $py_messages queued messages (release build)"
c2d_py=$(scripts/python-env.sh --release)
py_drain=(C2D_COUNT="$py_messages" IOTHUB_MQTT_PORT="$mqtt_port" "$c2d_py" -u tests/interop/python/c2d_drain.py)
ours_py=$(receive_rate c2d-py-device "${py_drain[@]}")
ours_aio=$(receive_rate c2d-py-aio-device "${py_drain[@]}" --asyncio)
echo "compare: c2d DeviceClient (c2d receive) receiving $py_messages queued messages"
ours=$(receive_rate c2d-device "$c2d" receive --port "$mqtt_port" --count "$py_messages" --json)
kill "${pids[-1]}" && wait "${pids[-1]}" 2>/dev/null || true

# --- 3. sending, on a hub on IoT Hub's ports ----------------------------------------------
send_py= send_c2d=
if (exec 3<>/dev/tcp/127.0.0.1/5671) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null; then
    echo "compare: ports 5671/443 are taken: sending is not compared"
else
    "$c2d" hub --data-dir "$work/hub443" --max-queue-depth $((2 * send_messages + py_messages + 10)) \
        >"$work/hub443.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -f "$work/hub443/endpoints.json" ] && break; sleep 0.1; done
    owner=$(field '["iothubowner_connection_string"]' <<<"$("$c2d" hub info --data-dir "$work/hub443" --json)")
    IOTHUB_SERVICE_CONNECTION_STRING=$owner IOTHUB_CA_FILE=$work/hub443/ca.pem \
        "$c2d" device create sender-target >/dev/null
    echo "compare: azure-iot-hub (Python) sending $send_messages messages"
    send_py=$(IOTHUB_SERVICE_CONNECTION_STRING=$owner IOTHUB_CA_FILE=$work/hub443/ca.pem C2D_COUNT=$send_messages \
        "$venv/bin/python" tests/interop/python/hub_service.py send-rate sender-target | grep -o 'RATE [0-9]*' | cut -d' ' -f2)
    "$c2d" purge --device sender-target --connection-string "$owner" --ca-file "$work/hub443/ca.pem" >/dev/null
    echo "compare: c2d Python ServiceClient sending $send_messages messages"
    send_c2d=$(IOTHUB_SERVICE_CONNECTION_STRING=$owner IOTHUB_CA_FILE=$work/hub443/ca.pem C2D_COUNT=$send_messages \
        C2D_DEVICE_ID=sender-target C2D_RATE=1 "$c2d_py" tests/interop/python/c2d_service.py | grep -o 'RATE [0-9]*' | cut -d' ' -f2)
    "$c2d" purge --device sender-target --connection-string "$owner" --ca-file "$work/hub443/ca.pem" >/dev/null
    echo "compare: c2d Python ServiceClient (c2d.aio, asyncio.gather) sending $send_messages messages at once"
    send_c2d_gather=$(IOTHUB_SERVICE_CONNECTION_STRING=$owner IOTHUB_CA_FILE=$work/hub443/ca.pem C2D_COUNT=$send_messages \
        C2D_DEVICE_ID=sender-target C2D_RATE=1 C2D_CONCURRENT=1 "$c2d_py" tests/interop/python/c2d_service.py | grep -o 'RATE [0-9]*' | cut -d' ' -f2)

    # --- 4. the official Node SDKs next to c2d's Node package, on the same hub --------------
    c2d_node=$(scripts/node-env.sh --release)
    on443() { IOTHUB_SERVICE_CONNECTION_STRING=$owner IOTHUB_CA_FILE=$work/hub443/ca.pem "$@"; }
    receive_rate443() { # device command...
        local device=$1 cs
        shift
        cs=$(on443 "$c2d" device create "$device")
        on443 "$c2d" send --device "$device" --count "$py_messages" "{\"reading\": 21.5, \"unit\": \"C\"}" >/dev/null
        on443 scripts/drain-rate.py env IOTHUB_DEVICE_CONNECTION_STRING="$cs" C2D_COUNT="$py_messages" "$@"
    }
    echo "compare: azure-iot-device (Node, MQTT) receiving $py_messages queued messages"
    node_official=$(receive_rate443 node-device node tests/interop/node/drain.js)
    echo "compare: c2d Node DeviceClient receiving $py_messages queued messages (release build)"
    node_ours=$(receive_rate443 c2d-node-device NODE_PATH="$c2d_node" node tests/interop/node/c2d_drain.js)
    node_ours_events=$(receive_rate443 c2d-node-events NODE_PATH="$c2d_node" C2D_STYLE=events \
        node tests/interop/node/c2d_drain.js)
    on443 "$c2d" purge --device sender-target >/dev/null
    echo "compare: azure-iothub (Node) sending $send_messages messages"
    node_send_official=$(on443 env C2D_DEVICE_ID=sender-target C2D_COUNT=$send_messages \
        node tests/interop/node/send_rate.js | grep -o 'RATE [0-9]*' | cut -d' ' -f2)
    on443 "$c2d" purge --device sender-target >/dev/null
    echo "compare: azure-iothub (Node, Promise.all) sending $send_messages messages at once"
    node_send_official_all=$(on443 env C2D_DEVICE_ID=sender-target C2D_COUNT=$send_messages C2D_CONCURRENT=1 \
        node tests/interop/node/send_rate.js | grep -o 'RATE [0-9]*' | cut -d' ' -f2)
    on443 "$c2d" purge --device sender-target >/dev/null
    echo "compare: c2d Node ServiceClient sending $send_messages messages"
    node_send_ours=$(on443 env NODE_PATH="$c2d_node" C2D_DEVICE_ID=sender-target C2D_COUNT=$send_messages C2D_RATE=1 \
        node tests/interop/node/c2d_service.js | grep -o 'RATE [0-9]*' | cut -d' ' -f2)
    on443 "$c2d" purge --device sender-target >/dev/null
    echo "compare: c2d Node ServiceClient (Promise.all) sending $send_messages messages at once"
    node_send_ours_all=$(on443 env NODE_PATH="$c2d_node" C2D_DEVICE_ID=sender-target C2D_COUNT=$send_messages C2D_RATE=1 \
        C2D_CONCURRENT=1 node tests/interop/node/c2d_service.js | grep -o 'RATE [0-9]*' | cut -d' ' -f2)
fi

node_pkg() { node -p "require('$root/tests/interop/node/node_modules/$1/package.json').version"; }
python_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("azure-iot-device"))')
hub_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("azure-iot-hub"))')
echo
[ $broker = 1 ] && print_broker
drain_row() { # name "rate n cpu"
    local r=($2)
    printf '  %-44s %10s msg/s   client CPU %6s us/msg\n' "$1" "${r[0]}" "${r[2]}"
}
echo "receiving $py_messages queued messages over MQTT from one c2d hub, completing each (each printed as a JSON line);"
echo "client CPU: user + system time of the receiving process per message, first message to last:"
drain_row "azure-iot-device $python_version (Python)" "$py"
drain_row "c2d Python DeviceClient (blocking)" "$ours_py"
drain_row "c2d Python DeviceClient (asyncio)" "$ours_aio"
drain_row "c2d Rust DeviceClient (c2d receive)" "$ours"
echo "  ratio c2d Python/official Python SDK: blocking $(ratio "${ours_py%% *}" "${py%% *}"), asyncio $(ratio "${ours_aio%% *}" "${py%% *}"); c2d Rust/official: $(ratio "${ours%% *}" "${py%% *}")"
echo "  ratio c2d Python asyncio/blocking: $(ratio "${ours_aio%% *}" "${ours_py%% *}")"
if [ -n "$send_py" ] && [ -n "$send_c2d" ]; then
    echo "sending $send_messages messages (AMQP over TLS, each answered once the hub has it on disk):"
    printf '  %-44s %10s msg/s\n' "azure-iot-hub $hub_version (Python, its loop)" "$send_py" \
        "c2d Python ServiceClient (one after another)" "$send_c2d" \
        "c2d Python ServiceClient (asyncio.gather)" "$send_c2d_gather"
    echo "  ratio c2d/azure-iot-hub: one after another $(ratio "$send_c2d" "$send_py"), asyncio.gather $(ratio "$send_c2d_gather" "$send_py")"
fi
if [ -n "${node_ours:-}" ]; then
    echo "receiving $py_messages queued messages over MQTT (8883) from one c2d hub, completing each (each printed as a JSON line):"
    drain_row "azure-iot-device $(node_pkg azure-iot-device) (Node)" "$node_official"
    drain_row "c2d Node DeviceClient (for await, await complete)" "$node_ours"
    drain_row "c2d Node DeviceClient ('message' events)" "$node_ours_events"
    echo "  ratio c2d Node/official Node SDK: for await $(ratio "${node_ours%% *}" "${node_official%% *}"), events $(ratio "${node_ours_events%% *}" "${node_official%% *}")"
    echo "  ratio c2d Node for await/'message' events: $(ratio "${node_ours%% *}" "${node_ours_events%% *}")"
    echo "sending $send_messages messages (AMQP over TLS, each answered once the hub has it on disk):"
    printf '  %-44s %10s msg/s\n' "azure-iothub $(node_pkg azure-iothub) (Node, one after another)" "$node_send_official" \
        "azure-iothub $(node_pkg azure-iothub) (Node, Promise.all)" "$node_send_official_all" \
        "c2d Node ServiceClient (one after another)" "$node_send_ours" \
        "c2d Node ServiceClient (Promise.all)" "$node_send_ours_all"
    echo "  ratio c2d Node/azure-iothub: one after another $(ratio "$node_send_ours" "$node_send_official"), Promise.all $(ratio "$node_send_ours_all" "$node_send_official_all")"
fi
