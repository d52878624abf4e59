#!/usr/bin/env python3
"""Interop client: the official Python device SDK, azure-iot-device 2.14 (IoTHubDeviceClient),
receiving C2D messages from a hub over MQTT (TLS, 8883) or MQTT over WebSockets (443).

Waits for C2D_COUNT distinct messages of run C2D_RUN_ID and prints each as one JSON line. A
message the sender numbered (application properties `run` and `seq`) must have the body
`c2d-<run>-<seq>` and the message id `<run>-<seq>` (or the one its `expect-mid` property
names), and every property of C2D_PROPERTIES. The SDK acknowledges each message (PUBACK) on
receipt, before the application has seen it: it has no complete, reject or abandon.

env: IOTHUB_DEVICE_CONNECTION_STRING (required), IOTHUB_CA_FILE (the hub's CA, PEM),
     C2D_COUNT (1), C2D_RUN_ID (messages of other runs are printed and ignored),
     C2D_PROPERTIES (JSON object), DEVICE_TRANSPORT (mqtt | mqttws), TIMEOUT_S (60),
     IOTHUB_MQTT_PORT / IOTHUB_WS_PORT: for a hub on other ports than 8883 / 443, which the
     SDK cannot be told (the benchmarks' hubs use free ports); C2D_CERT_FILE and C2D_KEY_FILE
     for an X.509 device (the SDK's X509 and create_from_x509_certificate, with the host name
     and device id of an `x509=true` connection string); C2D_CONNECTION_RETRY=1 to let the
     SDK reconnect by itself after a dropped connection (off by default: a drop fails the run).
Prints READY on stderr once subscribed; the last stdout line is 'OK: ...' (exit 0) or
'FAIL: ...' (exit 1).
"""
import json
import os
import sys
import threading
import time


def setting(name, default=None):
    value = os.environ.get(name, "")
    return value if value else default


class Outcome:
    """The one closing line, written once, from whichever thread gets there first."""

    def __init__(self):
        self._lock = threading.Lock()

    def end(self, ok, text):
        if self._lock.acquire(blocking=False):
            print(("OK: " if ok else "FAIL: ") + text, flush=True)
            os._exit(0 if ok else 1)


outcome = Outcome()


def log(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def redirect_ports():
    """Points the SDK's fixed MQTT ports at the ones a test hub listens on (loopback only)."""
    ports = {}
    for fixed, name in ((8883, "IOTHUB_MQTT_PORT"), (443, "IOTHUB_WS_PORT")):
        if setting(name):
            ports[fixed] = int(setting(name))
    if not ports:
        return
    import paho.mqtt.client

    connect = paho.mqtt.client.Client.connect

    def redirected(self, host, port=1883, *args, **kwargs):
        if host in ("localhost", "127.0.0.1", "::1") and port in ports:
            port = ports[port]
        return connect(self, host, port, *args, **kwargs)

    paho.mqtt.client.Client.connect = redirected


class Expectations:
    """What the sender's conventions say a received message must hold."""

    def __init__(self, run, properties):
        self.run = run
        self.properties = properties

    def errors(self, body, message_id, props):
        found = []
        run, seq = props.get("run"), props.get("seq")
        if run is not None and seq is not None:
            want_body = "c2d-%s-%s" % (run, seq)
            if body != want_body:
                found.append("body %r, expected %r" % (body, want_body))
            want_id = props.get("expect-mid", "%s-%s" % (run, seq))
            if message_id != want_id:
                found.append("message id %r, expected %r" % (message_id, want_id))
        for key, value in self.properties.items():
            if props.get(key) != value:
                found.append("property %s=%r, expected %r" % (key, props.get(key), value))
        return found

    def is_other_run(self, props):
        return self.run is not None and props.get("run") != self.run


def main():
    try:
        from azure.iot.device import IoTHubDeviceClient
    except ImportError as e:
        outcome.end(False, "azure-iot-device is not installed: %s" % e)

    cs = setting("IOTHUB_DEVICE_CONNECTION_STRING") or outcome.end(
        False, "IOTHUB_DEVICE_CONNECTION_STRING is required"
    )
    count = int(setting("C2D_COUNT", "1"))
    timeout = float(setting("TIMEOUT_S", "60"))
    transport = setting("DEVICE_TRANSPORT", "mqtt")
    if transport not in ("mqtt", "mqttws"):
        outcome.end(False, "DEVICE_TRANSPORT is mqtt or mqttws, not %r" % transport)
    try:
        properties = {str(k): str(v) for k, v in json.loads(setting("C2D_PROPERTIES", "{}")).items()}
    except (ValueError, AttributeError) as e:
        outcome.end(False, "C2D_PROPERTIES is not a JSON object: %s" % e)
    expect = Expectations(setting("C2D_RUN_ID"), properties)

    retry = setting("C2D_CONNECTION_RETRY") == "1"
    options = {"websockets": transport == "mqttws", "connection_retry": retry}
    if setting("IOTHUB_CA_FILE"):
        with open(setting("IOTHUB_CA_FILE")) as f:
            options["server_verification_cert"] = f.read()

    redirect_ports()

    deliveries = {}  # message key -> times delivered
    problems = []
    lock = threading.Lock()
    complete = threading.Event()

    def on_message(message):
        props = dict(message.custom_properties or {})
        body = bytes(message.data or b"").decode("utf-8", "replace")
        other_run = expect.is_other_run(props)
        errors = [] if other_run else expect.errors(body, message.message_id, props)
        print(json.dumps({
            "event": "other-run" if other_run else "received",
            "transport": transport,
            "messageId": message.message_id,
            "body": body,
            "properties": props,
            "correlationId": message.correlation_id,
            "contentType": message.content_type,
            "expiryTimeUtc": message.expiry_time_utc,
            "errors": errors,
        }), flush=True)
        if other_run:
            return
        key = "%s/%s" % (props.get("run"), props["seq"]) if "seq" in props else str(message.message_id)
        with lock:
            problems.extend("%s: %s" % (key, e) for e in errors)
            deliveries[key] = deliveries.get(key, 0) + 1
            if len(deliveries) >= count:
                complete.set()

    if setting("C2D_CERT_FILE"):
        # the SDK takes no x509=true connection string: its host name and device id, and X509
        from azure.iot.device import X509

        parts = dict(p.split("=", 1) for p in cs.split(";") if "=" in p)
        client = IoTHubDeviceClient.create_from_x509_certificate(
            X509(cert_file=setting("C2D_CERT_FILE"), key_file=setting("C2D_KEY_FILE")),
            hostname=parts["HostName"],
            device_id=parts["DeviceId"],
            **options,
        )
    else:
        client = IoTHubDeviceClient.create_from_connection_string(cs, **options)

    def watchdog():
        if not complete.wait(timeout):
            outcome.end(False, "%d of %d messages within %.0f s (%s)" % (len(deliveries), count, timeout, transport))

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        client.connect()
        # set once connected, the handler subscribes and returns after the SUBACK
        client.on_message_received = on_message
    except Exception as e:
        outcome.end(False, "connecting: %s: %s" % (type(e).__name__, e))
    log("connected over %s and subscribed" % transport)
    print("READY", file=sys.stderr, flush=True)

    complete.wait(timeout + 1)
    time.sleep(0.3)  # the last PUBACK is written by paho's thread
    try:
        client.shutdown()
    except Exception as e:
        log("shutdown: %r" % e)
    if problems:
        outcome.end(False, "; ".join(problems))
    again = sum(1 for n in deliveries.values() if n > 1)
    outcome.end(True, "received %d C2D messages over %s%s" % (
        len(deliveries), transport, " (%d more than once)" % again if again else ""))


if __name__ == "__main__":
    main()
