#!/usr/bin/env bash
# Interop with the official Azure IoT SDKs: a c2d hub on IoT Hub's own ports (8883, 5671,
# 443, which the SDKs cannot change), devices registered through the REST registry, and the
# clients of python/ and node/, each built on an official SDK, driving it. Prints one line per
# case and a closing "N passed, N failed" line; exits non-zero if any case failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
c2d=${C2D_BIN:-$root/target/debug/c2d}

[ -x "$c2d" ] || { echo "interop: $c2d not built (cargo build -p c2d-cli)"; exit 1; }
"$here/install.sh" || { echo "interop: installing the official SDKs failed"; exit 1; }
py=$here/.deps/venv/bin/python
# c2d's own Python package (bindings-python), in a virtualenv of its own
c2d_py=${C2D_PYTHON:-}
if [ -z "$c2d_py" ]; then
    c2d_py=$("$root/scripts/python-env.sh") || { echo "interop: installing the c2d Python package failed"; exit 1; }
fi
# c2d's own Node.js package (bindings-node), installed into a project of its own
c2d_node_modules=${C2D_NODE_MODULES:-}
if [ -z "$c2d_node_modules" ]; then
    c2d_node_modules=$("$root/scripts/node-env.sh") || { echo "interop: installing the c2d Node.js package failed"; exit 1; }
fi
node_send() { env "$@" node "$here/node/service_send.js"; }
node_registry() { env "$@" node "$here/node/registry.js"; }

for port in 8883 5671 443; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "interop: port $port is in use; these tests need IoT Hub's ports free"
        exit 1
    fi
done

work=$(mktemp -d)
hub_pid=
cleanup() {
    [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null && wait "$hub_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_hub() { # extra options of `c2d hub`
    "$c2d" hub --data-dir "$work/hub" --feedback-interval 1s "$@" >>"$work/hub.log" 2>&1 &
    hub_pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "interop: the hub did not start"; cat "$work/hub.log"; exit 1
}
stop_hub() { kill "$hub_pid" && wait "$hub_pid"; hub_pid=; }

start_hub
info() { "$c2d" hub info --data-dir "$work/hub" --json | "$py" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
export IOTHUB_CA_FILE=$work/hub/ca.pem
export IOTHUB_SERVICE_CONNECTION_STRING=$(info service_connection_string)
owner=$(info iothubowner_connection_string)
create() { "$c2d" device create "$1" --connection-string "$owner" --ca-file "$IOTHUB_CA_FILE"; }
export IOTHUB_DEVICE_CONNECTION_STRING=$(create dev1) || exit 1
export TIMEOUT_S=30

passed=0 failed=0
result() { # name, ok?, detail
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1: $3"; fi
}

# Starts a device client in the background (its pid in dev_pid) and waits for its READY.
start_device() { # log prefix, interpreter, script, env...
    local log=$1 interpreter=$2 script=$3; shift 3
    env "$@" "$interpreter" "$script" >"$log.out" 2>"$log.err" &
    dev_pid=$!
    for _ in $(seq 300); do grep -q READY "$log.err" && return 0; kill -0 $dev_pid 2>/dev/null || break; sleep 0.1; done
    return 1
}
device_start() { local log=$1; shift; start_device "$log" "$py" "$here/python/device_receive.py" "$@"; }
device_wait() { wait "$dev_pid"; }

# 1. Python device (MQTT) receives what the Node service (AMQP) sends, with properties and
#    ack=full; the service sees one Success record per message.
case_basic() { # name, extra env
    local name=$1; shift
    local props='{"colour":"deep blue","path":"a/b c","math":"1+1=2&3"}'
    if ! device_start "$work/$name-dev" C2D_COUNT=3 C2D_RUN_ID="$name" C2D_PROPERTIES="$props" "$@"; then
        result "$name" 1 "device did not start: $(tail -n 3 "$work/$name-dev.err")"; return
    fi
    node_send C2D_COUNT=3 C2D_RUN_ID="$name" C2D_PROPERTIES="$props" "$@" >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    local s=$?
    device_wait; local d=$?
    result "$name" $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 1 "$work/$name-dev.out")"
}
case_basic py-mqtt-device_node-amqp-service
case_basic uuid-message-ids C2D_UUID_IDS=1
case_basic py-mqttws-device_node-amqpws-service DEVICE_TRANSPORT=mqttws SERVICE_TRANSPORT=amqpws

# 2. Store and forward: the service sends while the device is offline; the device connects
#    later, receives everything, and the feedback reaches the waiting service.
# A device of its own: a device whose MQTT session persists gets its queued messages right
# after CONNACK, before the Python SDK has set its handler, and that SDK acknowledges them
# on receipt (IoT Hub does the same), so the test would race with itself.
name=store-and-forward
sf_cs=$(create sf-dev) || exit 1
node_send C2D_DEVICE_ID=sf-dev C2D_COUNT=3 C2D_RUN_ID=$name >"$work/$name-svc.out" 2>"$work/$name-svc.err" &
svc_pid=$!
for _ in $(seq 300); do [ "$(grep -c '"event":"sent"' "$work/$name-svc.out" 2>/dev/null)" = 3 ] && break; sleep 0.1; done
sleep 1
device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$sf_cs" C2D_COUNT=3 C2D_RUN_ID=$name
device_wait; d=$?
wait $svc_pid; s=$?
result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 1 "$work/$name-dev.out")"

# 3. Across a hub restart: accepted messages wait in the store for the device.
name=across-hub-restart
restart_cs=$(create restart-dev) || exit 1
node_send C2D_DEVICE_ID=restart-dev C2D_COUNT=3 C2D_RUN_ID=$name C2D_WAIT_FEEDBACK=0 >"$work/$name-svc.out" 2>"$work/$name-svc.err"
s=$?
stop_hub; start_hub
device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$restart_cs" C2D_COUNT=3 C2D_RUN_ID=$name
device_wait; d=$?
result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 1 "$work/$name-dev.out")"

# 4. The Node SDK's own errors: an unknown device, and the 51st message of a full queue.
name=device-not-found
out=$(node_send C2D_DEVICE_ID=no-such-device C2D_COUNT=1 2>/dev/null | tail -n 1)
[[ "$out" == FAIL:*DeviceNotFoundError* ]]; result $name $? "$out"

name=queue-depth-exceeded
create dev-full >/dev/null
out=$(node_send C2D_DEVICE_ID=dev-full C2D_COUNT=51 C2D_WAIT_FEEDBACK=0 2>/dev/null | tail -n 1)
queued=$("$c2d" device show dev-full --connection-string "$owner" --ca-file "$IOTHUB_CA_FILE" |
    "$py" -c 'import json,sys; print(json.load(sys.stdin)["cloudToDeviceMessageCount"])')
[[ "$out" == "FAIL: send #51 failed: DeviceMaximumQueueDepthExceededError"* && "$queued" == 50 ]]
result $name $? "$out (queued: $queued)"

# 5. The Node device SDK over each of its transports, settling as each message asks; the
#    service sees Success, Rejected, a redelivery after abandon, and DeliveryCountExceeded
#    after the last allowed abandon. MQTT can only complete (reject/abandon must throw).
node_device_start() { local log=$1; shift; start_device "$log" node "$here/node/device.js" "$@"; }
for transport in mqtt mqttws amqp amqpws http; do
    name=node-device-$transport
    if [[ $transport == mqtt* ]]; then
        actions=complete,reject expect=Success,Success
    else
        actions=complete,reject,abandon-once,abandon expect=Success,Rejected,Success,DeliveryCountExceeded
    fi
    if ! node_device_start "$work/$name-dev" DEVICE_TRANSPORT=$transport C2D_COUNT=4 C2D_RUN_ID=$name; then
        result $name 1 "device did not start: $(tail -n 3 "$work/$name-dev.out" "$work/$name-dev.err")"; continue
    fi
    node_send C2D_COUNT=4 C2D_RUN_ID=$name C2D_ACTIONS=$actions C2D_EXPECT_FEEDBACK=$expect \
        >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 1 "$work/$name-dev.out")"
done

# 6. The Python service SDK (azure-iot-hub): registry create, send over AMQP and AMQP over
#    WebSockets to a Python MQTT device, feedback read over REST, registry delete.
name=py-hub-registry-create
pydev=$(IOTHUB_SERVICE_CONNECTION_STRING=$owner "$py" "$here/python/hub_service.py" create py-hub-dev 2>"$work/$name.err")
[[ $pydev == HostName=*DeviceId=py-hub-dev* ]]; result $name $? "$pydev $(tail -n 3 "$work/$name.err")"
for transport in amqp amqpws; do
    name=py-hub-send-$transport
    device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$pydev" C2D_COUNT=3 C2D_RUN_ID=$name
    IOTHUB_SERVICE_CONNECTION_STRING=$owner SERVICE_TRANSPORT=$transport C2D_COUNT=3 C2D_RUN_ID=$name \
        "$py" "$here/python/hub_service.py" send py-hub-dev >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out") $(tail -n 2 "$work/$name-svc.err"); device: $(tail -n 1 "$work/$name-dev.out")"
done
name=py-hub-registry-delete
out=$(IOTHUB_SERVICE_CONNECTION_STRING=$owner "$py" "$here/python/hub_service.py" delete py-hub-dev 2>&1 | tail -n 1)
[[ $out == OK:* ]]; result $name $? "$out"

# 7. The Node service SDK's Registry: create, get, list, delete.
name=node-registry
out=$(node_registry IOTHUB_SERVICE_CONNECTION_STRING="$owner" 2>&1 | tail -n 1)
[[ $out == OK:* ]]; result $name $? "$out"

# 8. c2d's own clients against the official SDKs (c2d's CLI is a thin layer on them).
export C2D_DEVICE_CS=$(create c2d-dev) || exit 1
c2d_receive() { IOTHUB_DEVICE_CONNECTION_STRING=$C2D_DEVICE_CS "$c2d" receive --json --timeout 30s --poll-interval 200ms "$@"; }
#  a. c2d's ServiceClient → the official Python device SDK
name=c2d-service_py-device
device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$C2D_DEVICE_CS" C2D_COUNT=2 C2D_RUN_ID=$name
s=0
for i in 1 2; do
    out=$("$c2d" send --device c2d-dev --ack full --wait --json --message-id "$name-$i" \
        --property run=$name --property seq=$i "c2d-$name-$i" 2>&1)
    [[ $out == *'"statusCode":"Success"'* ]] || { s=1; echo "$out" >>"$work/$name-svc.out"; }
done
device_wait; d=$?
result $name $((s | d)) "service: $(tail -n 2 "$work/$name-svc.out" 2>/dev/null); device: $(tail -n 1 "$work/$name-dev.out")"
#  a'. c2d's ServiceClient → the official Node device SDK over HTTP (azure-iot-device-http),
#     complete and reject, each outcome judged by c2d's own wait for the feedback
name=c2d-service_node-http-device
start_device "$work/$name-dev" node "$here/node/device.js" IOTHUB_DEVICE_CONNECTION_STRING="$C2D_DEVICE_CS" \
    DEVICE_TRANSPORT=http C2D_COUNT=2 C2D_RUN_ID=$name
s=0
for i in 1 2; do
    action=complete expect=Success; [ $i = 2 ] && action=reject expect=Rejected
    out=$("$c2d" send --device c2d-dev --ack full --wait --json --message-id "$name-$i" \
        --property run=$name --property seq=$i --property action=$action "c2d-$name-$i" 2>&1)
    [[ $out == *"\"statusCode\":\"$expect\""* ]] || { s=1; echo "$out" >>"$work/$name-svc.out"; }
done
device_wait; d=$?
result $name $((s | d)) "service: $(tail -n 2 "$work/$name-svc.out" 2>/dev/null); device: $(tail -n 1 "$work/$name-dev.out")"
#  b. the official Node service SDK → c2d's DeviceClient, on every transport
for transport in mqtt mqtt-ws amqp amqp-ws https; do
    name=node-service_c2d-device-$transport
    c2d_receive --transport $transport --count 2 --complete >"$work/$name-dev.out" 2>"$work/$name-dev.err" &
    rpid=$!
    node_send C2D_DEVICE_ID=c2d-dev C2D_COUNT=2 C2D_RUN_ID=$name C2D_PROPERTIES='{"k":"v w"}' \
        >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    wait $rpid; d=$?
    [ "$(grep -c '"action":"completed"' "$work/$name-dev.out")" = 2 ] && grep -q '"k":"v w"' "$work/$name-dev.out" || d=1
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 2 "$work/$name-dev.out" "$work/$name-dev.err")"
done
#  c. c2d's device rejects and abandons over AMQP and HTTPS; the Node service SDK sees the
#     outcomes
for transport in amqp https; do for action in reject abandon; do
    name=c2d-device-${action}-${transport}_node-feedback
    count=1; [ $action = abandon ] && count=10 # IoT Hub's max delivery count
    expect=Rejected; [ $action = abandon ] && expect=DeliveryCountExceeded
    c2d_receive --transport $transport --count $count --$action >"$work/$name-dev.out" 2>"$work/$name-dev.err" &
    rpid=$!
    node_send C2D_DEVICE_ID=c2d-dev C2D_COUNT=1 C2D_RUN_ID=$name C2D_ACTIONS=$action C2D_EXPECT_FEEDBACK=$expect \
        >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    wait $rpid; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 2 "$work/$name-dev.out" "$work/$name-dev.err")"
done; done

# 9. c2d's Python package against the official SDKs.
#  a. the official Python service SDK (azure-iot-hub, AMQP) → c2d's Python DeviceClient
c2d_py_device_start() { local log=$1; shift; start_device "$log" "$c2d_py" "$here/python/c2d_device.py" "$@"; }
py_cs=$(create c2d-py-dev) || exit 1
for transport in amqp mqtt; do
    name=py-hub-service_c2d-python-device-$transport
    c2d_py_device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$py_cs" DEVICE_TRANSPORT=$transport \
        C2D_COUNT=2 C2D_RUN_ID=$name
    IOTHUB_SERVICE_CONNECTION_STRING=$owner C2D_COUNT=2 C2D_RUN_ID=$name \
        "$py" "$here/python/hub_service.py" send c2d-py-dev >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out") $(tail -n 2 "$work/$name-svc.err"); device: $(tail -n 2 "$work/$name-dev.out" "$work/$name-dev.err")"
done
#  b. the official Node service SDK (azure-iothub) → c2d's Python DeviceClient: complete,
#     reject, abandon once, abandon to the end, judged by the feedback Node receives
for transport in amqp amqp_ws mqtt_ws https; do
    name=node-service_c2d-python-device-$transport
    if [[ $transport == mqtt* ]]; then
        actions=complete expect=Success
    else
        actions=complete,reject,abandon-once,abandon expect=Success,Rejected,Success,DeliveryCountExceeded
    fi
    c2d_py_device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$py_cs" DEVICE_TRANSPORT=$transport \
        C2D_COUNT=4 C2D_RUN_ID=$name C2D_PROPERTIES='{"k":"v w"}'
    node_send C2D_DEVICE_ID=c2d-py-dev C2D_COUNT=4 C2D_RUN_ID=$name C2D_ACTIONS=$actions \
        C2D_EXPECT_FEEDBACK=$expect C2D_PROPERTIES='{"k":"v w"}' >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 2 "$work/$name-dev.out" "$work/$name-dev.err")"
done
#  c. c2d's Python ServiceClient → the official Python device SDK (azure-iot-device), over
#     MQTT and MQTT over WebSockets; the service checks each message's Success outcome
for transport in mqtt mqttws; do
    name=c2d-python-service_py-device-$transport
    device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$py_cs" DEVICE_TRANSPORT=$transport \
        C2D_COUNT=3 C2D_RUN_ID=$name C2D_PROPERTIES='{"colour":"deep blue"}'
    IOTHUB_SERVICE_CONNECTION_STRING=$IOTHUB_SERVICE_CONNECTION_STRING C2D_DEVICE_ID=c2d-py-dev C2D_COUNT=3 \
        C2D_RUN_ID=$name C2D_PROPERTIES='{"colour":"deep blue"}' \
        "$c2d_py" "$here/python/c2d_service.py" >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out") $(tail -n 2 "$work/$name-svc.err"); device: $(tail -n 1 "$work/$name-dev.out")"
done

# 10. c2d's Node.js package against the official SDKs.
#  a. the official Node service SDK (azure-iothub) → c2d's Node DeviceClient: complete,
#     reject, abandon once, abandon to the end, judged by the feedback Node receives
c2d_node_device_start() { local log=$1; shift; start_device "$log" node "$here/node/c2d_device.js" NODE_PATH="$c2d_node_modules" "$@"; }
node_cs=$(create c2d-node-dev) || exit 1
for transport in amqp amqp_ws mqtt https; do
    name=node-service_c2d-node-device-$transport
    if [[ $transport == mqtt* ]]; then
        # (a refused reject comes back only when its lock ends, 60 s: LocalHub's tests cover
        # that with a manual clock)
        actions=complete expect=Success
    else
        actions=complete,reject,abandon-once,abandon expect=Success,Rejected,Success,DeliveryCountExceeded
    fi
    if ! c2d_node_device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$node_cs" DEVICE_TRANSPORT=$transport \
        C2D_COUNT=4 C2D_RUN_ID=$name C2D_PROPERTIES='{"k":"v w"}'; then
        result $name 1 "device did not start: $(tail -n 3 "$work/$name-dev.out" "$work/$name-dev.err")"; continue
    fi
    node_send C2D_DEVICE_ID=c2d-node-dev C2D_COUNT=4 C2D_RUN_ID=$name C2D_ACTIONS=$actions \
        C2D_EXPECT_FEEDBACK=$expect C2D_PROPERTIES='{"k":"v w"}' >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 2 "$work/$name-dev.out" "$work/$name-dev.err")"
done
#  b. c2d's Node ServiceClient → the official Node device SDK (azure-iot-device), over MQTT,
#     AMQP and HTTP (azure-iot-device-http, polling every second); the service checks each
#     message's Success outcome
for transport in mqtt amqp http; do
    name=c2d-node-service_node-device-$transport
    if ! start_device "$work/$name-dev" node "$here/node/device.js" IOTHUB_DEVICE_CONNECTION_STRING="$node_cs" \
        DEVICE_TRANSPORT=$transport C2D_COUNT=3 C2D_RUN_ID=$name; then
        result $name 1 "device did not start: $(tail -n 3 "$work/$name-dev.out" "$work/$name-dev.err")"; continue
    fi
    NODE_PATH=$c2d_node_modules C2D_DEVICE_ID=c2d-node-dev C2D_COUNT=3 C2D_RUN_ID=$name \
        node "$here/node/c2d_service.js" >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out") $(tail -n 2 "$work/$name-svc.err"); device: $(tail -n 1 "$work/$name-dev.out")"
done

# 11. X.509 device identities, registered through the official Node service SDK's Registry
#     (azure-iothub: x509Thumbprint → selfSigned; type certificateAuthority), with
#     certificates made by `c2d device certificate` (self-signed, or signed by the hub's
#     development CA, which the hub trusts for device certificates); the official devices
#     receive what c2d sends, each outcome Success; and c2d's own device with a certificate
#     under the Node service SDK.
certs=$work/certs
x509_device() { # id, [--ca-cert … --ca-key …]: prints the SHA-1 thumbprint
    local id=$1; shift
    "$c2d" device certificate "$id" --out "$certs" "$@" 2>/dev/null
}
x509_send() { # name, device, count: c2d sends with ack=full and waits for each Success
    local name=$1 dev=$2 n=$3 s=0
    for i in $(seq "$n"); do
        out=$("$c2d" send --device "$dev" --ack full --wait --json --message-id "$name-$i" \
            --property run=$name --property seq=$i "c2d-$name-$i" 2>&1)
        [[ $out == *'"statusCode":"Success"'* ]] || { s=1; echo "$out" >>"$work/$name-svc.out"; }
    done
    return $s
}
x509_case() { # name, device, interpreter, script, transport, [registry env]
    local name=$1 dev=$2 interpreter=$3 script=$4 transport=$5; shift 5
    if ! node_registry C2D_DEVICE_ID="$dev" IOTHUB_SERVICE_CONNECTION_STRING="$owner" "$@" >"$work/$name-reg.out" 2>&1; then
        result $name 1 "registry: $(tail -n 2 "$work/$name-reg.out")"; return
    fi
    if ! start_device "$work/$name-dev" "$interpreter" "$script" \
        IOTHUB_DEVICE_CONNECTION_STRING="HostName=localhost;DeviceId=$dev;x509=true" \
        C2D_CERT_FILE="$certs/$dev.cert.pem" C2D_KEY_FILE="$certs/$dev.key.pem" \
        DEVICE_TRANSPORT=$transport C2D_COUNT=2 C2D_RUN_ID=$name; then
        result $name 1 "device did not start: $(tail -n 3 "$work/$name-dev.out" "$work/$name-dev.err")"; return
    fi
    x509_send $name "$dev" 2; s=$?
    device_wait; d=$?
    result $name $((s | d)) "service: $(tail -n 2 "$work/$name-svc.out" 2>/dev/null); device: $(tail -n 1 "$work/$name-dev.out") $(tail -n 2 "$work/$name-dev.err")"
}
for transport in mqtt mqttws; do
    x509_case py-device-x509-$transport "py-x509-$transport" "$py" "$here/python/device_receive.py" $transport \
        C2D_X509_THUMBPRINT="$(x509_device "py-x509-$transport")"
done
for transport in mqtt amqp http; do
    x509_case node-device-x509-$transport "node-x509-$transport" node "$here/node/device.js" $transport \
        C2D_X509_THUMBPRINT="$(x509_device "node-x509-$transport")"
done
x509_device node-x509-ca --ca-cert "$work/hub/ca.pem" --ca-key "$work/hub/ca.key" >/dev/null
x509_case node-device-x509-ca-mqtt node-x509-ca node "$here/node/device.js" mqtt C2D_X509_CA=1
#  c2d's CLI device with its certificate over AMQP and HTTPS ← the Node service SDK
for transport in amqp https; do
    name=node-service_c2d-device-x509-$transport dev=c2d-x509-$transport
    node_registry C2D_DEVICE_ID="$dev" IOTHUB_SERVICE_CONNECTION_STRING="$owner" \
        C2D_X509_THUMBPRINT="$(x509_device "$dev")" >"$work/$name-reg.out" 2>&1 ||
        { result $name 1 "registry: $(tail -n 2 "$work/$name-reg.out")"; continue; }
    "$c2d" receive --json --timeout 30s --poll-interval 200ms --transport $transport --count 2 --complete \
        --connection-string "HostName=localhost;DeviceId=$dev;x509=true" \
        --cert-file "$certs/$dev.cert.pem" --key-file "$certs/$dev.key.pem" >"$work/$name-dev.out" 2>"$work/$name-dev.err" &
    rpid=$!
    node_send C2D_DEVICE_ID=$dev C2D_COUNT=2 C2D_RUN_ID=$name >"$work/$name-svc.out" 2>"$work/$name-svc.err"
    s=$?
    wait $rpid; d=$?
    [ "$(grep -c '"action":"completed"' "$work/$name-dev.out")" = 2 ] || d=1
    result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out"); device: $(tail -n 2 "$work/$name-dev.out" "$work/$name-dev.err")"
done

# 12. Version 1 device certificates, made the way the official Node SDK's own end-to-end
#     tests make theirs (`openssl req`, then `openssl x509 -req` with no extensions: RSA,
#     version 1): self-signed, and signed by the hub's development CA. The official Node
#     device receives what c2d sends over each of its transports, and so does c2d's own.
v1_certificate() { # id, [ca]: writes $certs/$id.cert.pem and .key.pem; prints the SHA-1 thumbprint
    local id=$1 ca=${2:-}
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$id" \
        -keyout "$certs/$id.key.pem" -out "$certs/$id.csr" 2>/dev/null || return 1
    if [ -n "$ca" ]; then
        openssl x509 -req -days 1 -in "$certs/$id.csr" -CA "$work/hub/ca.pem" -CAkey "$work/hub/ca.key" \
            -set_serial "$RANDOM$RANDOM" -out "$certs/$id.cert.pem" 2>/dev/null || return 1
    else
        openssl x509 -req -days 1 -in "$certs/$id.csr" -signkey "$certs/$id.key.pem" \
            -out "$certs/$id.cert.pem" 2>/dev/null || return 1
    fi
    openssl x509 -in "$certs/$id.cert.pem" -noout -text | grep -q 'Version: 1 ' || return 1
    openssl x509 -in "$certs/$id.cert.pem" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d :
}
for transport in mqtt mqttws amqp amqpws; do
    dev=node-x509v1-$transport
    x509_case node-device-x509-v1-$transport "$dev" node "$here/node/device.js" $transport \
        C2D_X509_THUMBPRINT="$(v1_certificate "$dev")"
done
for transport in mqtt amqp; do
    dev=node-x509v1-ca-$transport
    v1_certificate "$dev" ca >/dev/null
    x509_case node-device-x509-v1-ca-$transport "$dev" node "$here/node/device.js" $transport C2D_X509_CA=1
done
#  c2d's CLI device with a version 1 certificate over MQTT ← c2d's CLI service
name=c2d-device-x509-v1-mqtt dev=c2d-x509v1
node_registry C2D_DEVICE_ID="$dev" IOTHUB_SERVICE_CONNECTION_STRING="$owner" \
    C2D_X509_THUMBPRINT="$(v1_certificate "$dev")" >"$work/$name-reg.out" 2>&1 ||
    { result $name 1 "registry: $(tail -n 2 "$work/$name-reg.out")"; }
"$c2d" receive --json --timeout 30s --transport mqtt --count 2 --complete \
    --connection-string "HostName=localhost;DeviceId=$dev;x509=true" \
    --cert-file "$certs/$dev.cert.pem" --key-file "$certs/$dev.key.pem" >"$work/$name-dev.out" 2>"$work/$name-dev.err" &
rpid=$!
x509_send $name "$dev" 2; s=$?
wait $rpid; d=$?
[ "$(grep -c '"action":"completed"' "$work/$name-dev.out")" = 2 ] || d=1
result $name $((s | d)) "service: $(tail -n 1 "$work/$name-svc.out" 2>/dev/null); device: $(tail -n 2 "$work/$name-dev.out" "$work/$name-dev.err")"

# Throttling as IoT Hub: the hub restarted as an S1 hub (100 C2D sends a minute, no backlog
# beyond one send's turn).
stop_hub; start_hub --tier S1 --units 1 --throttle-backlog 0s
#  the official Node service SDK sees its own ThrottlingError, and retries by itself
name=node-service-sees-throttling
create throttle-dev >/dev/null || exit 1
C2D_DEVICE_ID=throttle-dev C2D_COUNT=3 TIMEOUT_S=120 node "$here/node/throttled.js" \
    >"$work/$name.out" 2>"$work/$name.err"
result $name $? "$(tail -n 1 "$work/$name.out"); $(tail -n 3 "$work/$name.err")"
#  c2d's fan-out (`c2d send --devices-file`, paced to S1) to official SDK devices: a Python
#  device over MQTT and a Node device over AMQP each get the message
name=c2d-send-many_official-devices
fan_py_cs=$(create fan-py) && fan_node_cs=$(create fan-node) || exit 1
if device_start "$work/$name-py" IOTHUB_DEVICE_CONNECTION_STRING="$fan_py_cs" C2D_COUNT=1 C2D_RUN_ID=$name; then
    py_pid=$dev_pid
    if node_device_start "$work/$name-node" IOTHUB_DEVICE_CONNECTION_STRING="$fan_node_cs" \
        DEVICE_TRANSPORT=amqp C2D_COUNT=1 C2D_RUN_ID=$name; then
        node_pid=$dev_pid
        printf 'fan-py\nfan-node\n' | "$c2d" send --devices-file - --tier S1 --property run=$name --json \
            "fan out" >"$work/$name-svc.out" 2>"$work/$name-svc.err"
        s=$?
        wait $py_pid; d1=$?; wait $node_pid; d2=$?
        result $name $((s | d1 | d2)) "service: $(tail -n 1 "$work/$name-svc.out") $(tail -n 1 "$work/$name-svc.err"); python device: $(tail -n 1 "$work/$name-py.out"); node device: $(tail -n 1 "$work/$name-node.out")"
    else
        kill $py_pid 2>/dev/null
        result $name 1 "node device did not start: $(tail -n 3 "$work/$name-node.err")"
    fi
else
    result $name 1 "python device did not start: $(tail -n 3 "$work/$name-py.err")"
fi

# 13. Faults on demand (`c2d hub fault`) as the official SDKs see them.
fault() { C2D_HUB_DIR=$work/hub "$c2d" hub fault "$@" >>"$work/faults.log" 2>&1; }
#  the Python device SDK (MQTT): its PUBACK lost, the message comes again once the locks are
#  expired; its connection dropped (no DISCONNECT, no close_notify), it reconnects by itself
#  and receives what comes next
name=official-python-device_lost-ack-and-dropped-connection
fault_cs=$(create fault-py) || exit 1
if device_start "$work/$name-dev" IOTHUB_DEVICE_CONNECTION_STRING="$fault_cs" C2D_COUNT=3 C2D_RUN_ID=$name \
    C2D_CONNECTION_RETRY=1 TIMEOUT_S=60; then
    fault lose-acks --device fault-py --count 1
    node_send C2D_DEVICE_ID=fault-py C2D_COUNT=2 C2D_RUN_ID=$name C2D_WAIT_FEEDBACK=0 >"$work/$name-svc1.out" 2>&1
    for _ in $(seq 100); do [ "$(grep -c '"event": "received"' "$work/$name-dev.out")" -ge 2 ] && break; sleep 0.1; done
    sleep 0.5
    fault expire-locks
    for _ in $(seq 100); do [ "$(grep -c '"event": "received"' "$work/$name-dev.out")" -ge 3 ] && break; sleep 0.1; done
    fault drop --device fault-py
    node_send C2D_DEVICE_ID=fault-py C2D_COUNT=3 C2D_RUN_ID=$name C2D_WAIT_FEEDBACK=0 >"$work/$name-svc2.out" 2>&1
    device_wait; d=$?
    again=$(grep -c 'more than once' "$work/$name-dev.out")
    [ "$d" = 0 ] && [ "$again" = 1 ]
    result $name $? "device: $(tail -n 1 "$work/$name-dev.out") $(tail -n 2 "$work/$name-dev.err" | tr '\n' ' ')"
else
    result $name 1 "device did not start: $(tail -n 3 "$work/$name-dev.err")"
fi
#  the Node service SDK: each refusal as its own error class
name=official-node-service_refused-sends
create refused-dev >/dev/null || exit 1
C2D_DEVICE_ID=refused-dev C2D_BIN="$c2d" C2D_HUB_DIR=$work/hub node "$here/node/refused.js" \
    >"$work/$name.out" 2>"$work/$name.err"
result $name $? "$(tail -n 1 "$work/$name.out"); $(tail -n 3 "$work/$name.err")"

if [ "$failed" -gt 0 ]; then
    echo "--- hub log (last 40 lines)"; tail -n 40 "$work/hub.log"
fi
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
