#!/usr/bin/env bash
# Sending one message to many devices, measured on this machine in one run (release builds):
#
#  1. On a hub on IoT Hub's own ports (the official SDKs cannot use others; fsync durability,
#     no throttling) with N registered devices: one message to every device, each send
#     answered by the hub, from c2d's `send_many` in Rust (`c2d send --devices-file`), Python
#     and Node, next to the official SDKs driven as their docs allow: Python azure-iot-hub's
#     send_c2d_message in a loop, Node azure-iothub's client.send in Promise.all batches of
#     the same in-flight count. Prints each rate and c2d's ratios to the official SDKs.
#  2. The hub restarted as IoT Hub S3 x 1 (83.3 sends a second, its default 1 s backlog):
#     `c2d send --devices-file` to T devices paced with --tier S3 --units 1 (elapsed next to
#     the ideal, (T-1)/83.3 s, and the throttling refusals it met), then unpaced with
#     --in-flight 200 (the hub's refusals, and the retries that absorbed them).
#  3. The peak memory (/usr/bin/time -v) of `c2d send --devices-file` over 10 000 and over
#     100 000 ids read from a file, none registered (each a DeviceNotFound at once).
#
#   scripts/fanout-bench.sh [--devices N] [--throttled T] [--in-flight K]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

devices=10000 throttled=1000 in_flight=64
while [ $# -gt 0 ]; do
    case $1 in
        --devices) devices=$2 ;;
        --throttled) throttled=$2 ;;
        --in-flight) in_flight=$2 ;;
        *) echo "usage: $0 [--devices N] [--throttled T] [--in-flight K]" >&2; exit 2 ;;
    esac
    shift 2
done
for port in 8883 5671 443; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "fanout-bench: port $port is taken; the official SDKs need IoT Hub's ports" >&2
        exit 1
    fi
done

echo "fanout-bench: building c2d (release), the Python and Node packages (release), the official SDKs"
cargo build -q --release -p c2d-cli
c2d=$root/target/release/c2d
c2d_py=$(scripts/python-env.sh --release)
c2d_node=$(scripts/node-env.sh --release)
tests/interop/install.sh >/dev/null
venv=$root/tests/interop/.deps/venv

work=$(mktemp -d)
hub_pid=
cleanup() {
    [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null && wait "$hub_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
start_hub() { # extra options
    "$c2d" hub --data-dir "$work/hub" "$@" >>"$work/hub.log" 2>&1 &
    hub_pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && return 0; sleep 0.1; done
    echo "fanout-bench: the hub did not start" >&2; cat "$work/hub.log" >&2; exit 1
}
stop_hub() { kill "$hub_pid" && wait "$hub_pid" 2>/dev/null; hub_pid=; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]])' "$1"; }
rate() { grep -o 'RATE [0-9]*' | cut -d' ' -f2; }

start_hub
export IOTHUB_CA_FILE=$work/hub/ca.pem
IOTHUB_SERVICE_CONNECTION_STRING=$("$c2d" hub info --data-dir "$work/hub" --json | field iothubowner_connection_string)
export IOTHUB_SERVICE_CONNECTION_STRING
seq -f "fan%06g" 1 "$devices" >"$work/devices.txt"
export C2D_DEVICES_FILE=$work/devices.txt C2D_IN_FLIGHT=$in_flight
echo "fanout-bench: registering $devices devices"
"$c2d_py" tests/interop/python/fanout_rate.py register >/dev/null

# --- 1. fan-out rates -----------------------------------------------------------------------
echo "fanout-bench: c2d send --devices-file (Rust), $devices devices, $in_flight in flight"
summary=$("$c2d" send --devices-file "$work/devices.txt" --in-flight "$in_flight" --message-id cmd-1 --json reboot | tail -n 1)
rust=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(round(s["sent"] / (s["elapsedMs"] / 1000)))' "$summary")
echo "fanout-bench: c2d Python send_many"
py_ours=$("$c2d_py" tests/interop/python/fanout_rate.py c2d | rate)
echo "fanout-bench: c2d Node sendMany"
node_ours=$(NODE_PATH=$c2d_node C2D_MODE=c2d node tests/interop/node/fanout_rate.js | rate)
echo "fanout-bench: azure-iothub (Node), Promise.all batches of $in_flight"
node_official=$(C2D_MODE=official node tests/interop/node/fanout_rate.js | rate)
echo "fanout-bench: azure-iot-hub (Python), send_c2d_message in a loop"
py_official=$("$venv/bin/python" tests/interop/python/fanout_rate.py official | rate)
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

# --- 2. a hub throttled as S3 x 1 ----------------------------------------------------------
stop_hub
start_hub --tier S3 --units 1
head -n "$throttled" "$work/devices.txt" >"$work/throttled.txt"
echo "fanout-bench: $throttled devices at --tier S3 --units 1 on a hub throttled as S3 x 1"
paced=$("$c2d" send --devices-file "$work/throttled.txt" --tier S3 --units 1 --json paced | tail -n 1)
echo "fanout-bench: the same devices unpaced, 200 in flight"
unpaced=$("$c2d" send --devices-file "$work/throttled.txt" --in-flight 200 --json unpaced | tail -n 1)
stop_hub

# --- 3. memory over 10 000 and 100 000 ids -------------------------------------------------
start_hub
seq -f "ghost%06g" 1 100000 >"$work/ids100k.txt"
head -n 10000 "$work/ids100k.txt" >"$work/ids10k.txt"
peak() { # ids file
    { /usr/bin/time -v "$c2d" send --devices-file "$1" --json x 2>&1 >/dev/null || true; } |
        sed -n 's/.*Maximum resident set size (kbytes): //p'
}
echo "fanout-bench: peak memory of c2d send --devices-file over 10 000 and 100 000 unregistered ids"
rss10k=$(peak "$work/ids10k.txt")
rss100k=$(peak "$work/ids100k.txt")

echo
echo "== one message to $devices registered devices (fsync, no throttling), $in_flight in flight =="
printf '%-48s %10s msg/s\n' "c2d send_many, Rust (c2d send --devices-file)" "$rust"
printf '%-48s %10s msg/s  (%s x azure-iot-hub)\n' "c2d send_many, Python" "$py_ours" "$(ratio "$py_ours" "$py_official")"
printf '%-48s %10s msg/s  (%s x azure-iothub)\n' "c2d sendMany, Node" "$node_ours" "$(ratio "$node_ours" "$node_official")"
printf '%-48s %10s msg/s\n' "azure-iot-hub (Python), a loop" "$py_official"
printf '%-48s %10s msg/s\n' "azure-iothub (Node), Promise.all batches" "$node_official"
echo
echo "== $throttled devices on a hub throttled as S3 x 1 (83.3 sends a second) =="
python3 - "$paced" "$unpaced" "$throttled" <<'EOF'
import json, sys
paced, unpaced, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
ideal = (n - 1) / (5000 / 60)
for name, s in (("paced --tier S3 --units 1", paced), ("unpaced, 200 in flight", unpaced)):
    secs = s["elapsedMs"] / 1000
    print(f"{name:<28} sent {s['sent']:>5}, failed {s['failed']}, {secs:6.2f} s ({secs / ideal:.3f} x the ideal "
          f"{ideal:.2f} s), throttling refusals met {s['throttled']}, retries {s['retried']}")
EOF
echo
echo "== peak RSS of c2d send --devices-file =="
echo "10 000 ids:  $rss10k KiB"
echo "100 000 ids: $rss100k KiB"
