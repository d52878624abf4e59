#!/usr/bin/env python3
"""A device application: receives its C2D messages and settles each by what it asks for:
`command=reboot` is done (complete), an unknown command is refused (reject), and
`command=update` is retried once later (abandon, then complete).

env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_TRANSPORT
(mqtt|mqtt_ws|amqp|amqp_ws, default amqp), C2D_PORT (optional), C2D_COUNT (messages to
handle before exiting, default: run until stopped).
"""

from __future__ import annotations

import os
from typing import Optional

import c2d


def main() -> None:
    count: Optional[int] = int(os.environ["C2D_COUNT"]) if os.environ.get("C2D_COUNT") else None
    port = int(os.environ["C2D_PORT"]) if os.environ.get("C2D_PORT") else None
    transport = c2d.Transport(os.environ.get("C2D_TRANSPORT", "amqp"))
    with c2d.DeviceClient.connect(
        os.environ["IOTHUB_DEVICE_CONNECTION_STRING"],
        transport=transport,
        trusted_ca_file=os.environ.get("IOTHUB_CA_FILE") or None,
        port=port,
    ) as device:
        print(f"device: connected over {transport.value}", flush=True)
        handled = 0
        for msg in device.messages():
            command = msg.properties.get("command", "")
            body = msg.body.decode()
            if command == "reboot":
                print(f"device: rebooting ({body})", flush=True)
                msg.complete()
            elif command == "update" and msg.delivery_count == 0:
                print(f"device: busy, update later ({body})", flush=True)
                msg.abandon()
                continue
            elif command == "update":
                print(f"device: updating ({body}), delivery {msg.delivery_count + 1}", flush=True)
                msg.complete()
            else:
                print(f"device: unknown command {command!r}, refused", flush=True)
                msg.reject()
            handled += 1
            if count is not None and handled >= count:
                break


if __name__ == "__main__":
    main()
