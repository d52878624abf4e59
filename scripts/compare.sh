#!/usr/bin/env bash
# c2d next to its peers, on this machine, in one run:
#
#  1. Mosquitto (Debian's package, installed if missing) with persistence on, behind TLS,
#     against the same workload shape as `c2d bench` (N QoS 1 subscribers, one QoS 1
#     publisher, M messages of S bytes, K publishes in flight; load from `c2d bench --broker`,
#     built on rumqttc), then `c2d bench` itself over MQTT with fsync and with OS durability;
#     prints each figure and c2d's ratio to Mosquitto.
#  2. The official Python device SDK (azure-iot-device, into a virtualenv) and c2d's own
#     DeviceClient (`c2d receive`) each draining P messages queued for a device on one c2d hub
#     over MQTT; prints each receive rate and the ratio.
#
#   scripts/compare.sh [--devices N] [--messages M] [--size S] [--in-flight K] [--python-messages P]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

devices=10 messages=20000 size=256 in_flight=16 py_messages=2000
while [ $# -gt 0 ]; do
    case $1 in
        --devices) devices=$2 ;;
        --messages) messages=$2 ;;
        --size) size=$2 ;;
        --in-flight) in_flight=$2 ;;
        --python-messages) py_messages=$2 ;;
        *) echo "usage: $0 [--devices N] [--messages M] [--size S] [--in-flight K] [--python-messages P]" >&2; exit 2 ;;
    esac
    shift 2
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v mosquitto >/dev/null || ! command -v openssl >/dev/null; then
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
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

# --- 1. Mosquitto, then c2d, same workload ------------------------------------------------
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
mq=$("$c2d" bench --broker "localhost:$port" --ca-file "$work/ca.pem" "${shape[@]}" --json)
echo "compare: c2d bench (fsync)"
fsync=$("$c2d" bench "${shape[@]}" --durability fsync --json)
echo "compare: c2d bench (os)"
os=$("$c2d" bench "${shape[@]}" --durability os --json)

row() { # name json
    printf '  %-36s %10.0f msg/s   p50 %6.2f ms   p99 %6.2f ms\n' "$1" \
        "$(field '["messages_per_second"]' <<<"$2")" \
        "$(field '["latency_ms"]["p50"]' <<<"$2")" "$(field '["latency_ms"]["p99"]' <<<"$2")"
}
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
mq_rate=$(field '["messages_per_second"]' <<<"$mq")

# --- 2. the official Python device SDK next to c2d's DeviceClient -------------------------
venv=$root/tests/interop/.deps/venv
tests/interop/install.sh python
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

# prints "<messages>/s" from the times of the first and last message line on stdin
rate() {
    python3 -c '
import sys, time
first = last = None; n = 0
for line in sys.stdin:
    if line.startswith("{"):
        now = time.monotonic(); first = first or now; last = now; n += 1
if n < 2: sys.exit("fewer than 2 messages arrived")
print("%.0f %d" % ((n - 1) / (last - first), n))'
}
receive_rate() { # device command...
    local device=$1
    shift
    local cs
    cs=$("$c2d" device create "$device" --endpoint "$https")
    "$c2d" send --device "$device" --count "$py_messages" --amqp-port "$amqp_port" \
        --https-port "${https#*:}" "{\"reading\": 21.5, \"unit\": \"C\"}" >/dev/null
    IOTHUB_DEVICE_CONNECTION_STRING=$cs "$@" | rate
}
echo "compare: azure-iot-device (Python) receiving $py_messages queued messages"
py=$(receive_rate py-device env C2D_COUNT="$py_messages" IOTHUB_MQTT_PORT="$mqtt_port" TIMEOUT_S=600 \
    "$venv/bin/python" -u tests/interop/python/device_receive.py)
echo "compare: c2d DeviceClient (c2d receive) receiving $py_messages queued messages"
ours=$(receive_rate c2d-device "$c2d" receive --port "$mqtt_port" --count "$py_messages" --json)

python_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("azure-iot-device"))')
echo
echo "c2d compared, ${shape[*]}, TLS everywhere:"
row "Mosquitto QoS 1 (persistence on)" "$mq"
row "c2d hub, MQTT devices, fsync" "$fsync"
row "c2d hub, MQTT devices, os" "$os"
echo "  ratio c2d/Mosquitto: fsync $(ratio "$(field '["messages_per_second"]' <<<"$fsync")" "$mq_rate"), os $(ratio "$(field '["messages_per_second"]' <<<"$os")" "$mq_rate")"
echo "receiving $py_messages queued messages over MQTT from one c2d hub (each printed as a JSON line):"
printf '  %-36s %10s msg/s\n' "azure-iot-device $python_version (Python)" "${py%% *}" "c2d DeviceClient (c2d receive)" "${ours%% *}"
echo "  ratio c2d/Python SDK: $(ratio "${ours%% *}" "${py%% *}")"
