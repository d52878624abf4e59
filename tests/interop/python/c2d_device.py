#!/usr/bin/env python3
"""Interop client: c2d's Python DeviceClient (the `c2d` package) receiving what an official
service SDK sends, over any transport (DEVICE_TRANSPORT: mqtt, mqtt_ws, amqp, amqp_ws, https;
HTTPS polls every 200 ms).

Receives the messages of run C2D_RUN_ID, checks each against the sender's conventions (body
`c2d-<run>-<seq>`, message id `<run>-<seq>` or its `expect-mid` property, C2D_PROPERTIES),
and settles each as its `action` property says: complete, reject, abandon (every delivery)
or abandon-once (the first delivery; then complete). Over MQTT, reject and abandon must
raise UnsupportedError, and the message is completed when it comes again.

env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_COUNT (1), C2D_RUN_ID,
     C2D_PROPERTIES (JSON), C2D_MAX_DELIVERY (10), DEVICE_TRANSPORT (mqtt), TIMEOUT_S (60).
Prints READY on stderr once connected; the last stdout line is 'OK: ...' or 'FAIL: ...'.
"""

from __future__ import annotations

import json
import os
import sys
import time

import c2d


def setting(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def end(ok: bool, text: str) -> None:
    print(("OK: " if ok else "FAIL: ") + text, flush=True)
    sys.exit(0 if ok else 1)


def main() -> None:
    transport = c2d.Transport(setting("DEVICE_TRANSPORT", "mqtt"))
    count = int(setting("C2D_COUNT", "1"))
    run = setting("C2D_RUN_ID")
    max_delivery = int(setting("C2D_MAX_DELIVERY", "10"))
    extra = {str(k): str(v) for k, v in json.loads(setting("C2D_PROPERTIES", "{}")).items()}
    deadline = time.monotonic() + float(setting("TIMEOUT_S", "60"))
    mqtt = transport in (c2d.Transport.MQTT, c2d.Transport.MQTT_WS)
    done: "dict[str, int]" = {}  # seq -> deliveries, once settled for good
    with c2d.DeviceClient.connect(
        setting("IOTHUB_DEVICE_CONNECTION_STRING"),
        transport=transport,
        trusted_ca_file=setting("IOTHUB_CA_FILE") or None,
        retry=c2d.RetryPolicy.fixed(0.2, max_retries=20),
        poll_interval=0.2,
    ) as device:
        print("READY", file=sys.stderr, flush=True)
        deliveries: "dict[str, int]" = {}
        while len(done) < count:
            left = deadline - time.monotonic()
            msg = device.receive(timeout=max(left, 0.0))
            if msg is None:
                end(False, f"timeout: settled {len(done)} of {count} over {transport.value}")
                return
            props = msg.properties
            if run and props.get("run") != run:
                print(json.dumps({"event": "other-run", "properties": props}), flush=True)
                msg.complete()
                continue
            seq = props.get("seq", "")
            body = msg.body.decode("utf-8", "replace")
            want_id = props.get("expect-mid", f"{props.get('run')}-{seq}")
            if body != f"c2d-{props.get('run')}-{seq}" or msg.message_id != want_id:
                end(False, f"seq {seq}: body {body!r}, message id {msg.message_id!r}")
            for key, value in extra.items():
                if props.get(key) != value:
                    end(False, f"seq {seq}: property {key}={props.get(key)!r}, expected {value!r}")
            deliveries[seq] = deliveries.get(seq, 0) + 1
            action = props.get("action", "complete")
            how = {"abandon-once": "abandon" if deliveries[seq] == 1 else "complete"}.get(action, action)
            print(json.dumps({"event": "received", "seq": seq, "messageId": msg.message_id,
                              "deliveryCount": msg.delivery_count, "action": how,
                              "properties": props}), flush=True)
            if mqtt and how != "complete":
                try:
                    getattr(msg, how)()
                    end(False, f"MQTT {how} should raise UnsupportedError")
                except c2d.UnsupportedError:
                    continue  # given up, not acknowledged: it comes again when its lock ends
            getattr(msg, how)()
            if how in ("complete", "reject") or deliveries[seq] >= max_delivery:
                done[seq] = deliveries[seq]
    end(True, f"c2d Python device ({transport.value}) settled {count} messages: "
        + " ".join(f"{k}x{v}" for k, v in sorted(done.items())))


if __name__ == "__main__":
    main()
