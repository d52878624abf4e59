#!/usr/bin/env python3
"""Benchmark client: c2d's Python DeviceClient draining the messages queued for a device,
completing each and printing it as one JSON line, as device_receive.py does with the
official SDK, so that scripts/compare.sh times both the same way.

  c2d_drain.py [--asyncio]

env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_COUNT, DEVICE_TRANSPORT (mqtt),
     IOTHUB_MQTT_PORT / IOTHUB_AMQP_PORT / IOTHUB_WS_PORT (a hub on other ports).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, Optional

import c2d
import c2d.aio


def port(name: str) -> Optional[int]:
    value = os.environ.get(name)
    return int(value) if value else None


def options() -> "dict[str, Any]":
    return {
        "transport": c2d.Transport(os.environ.get("DEVICE_TRANSPORT", "mqtt")),
        "trusted_ca_file": os.environ.get("IOTHUB_CA_FILE") or None,
        "mqtt_port": port("IOTHUB_MQTT_PORT"),
        "amqp_port": port("IOTHUB_AMQP_PORT"),
        "https_port": port("IOTHUB_WS_PORT"),
    }


def line(msg: c2d.ReceivedMessage | c2d.aio.ReceivedMessage) -> str:
    return json.dumps({"messageId": msg.message_id, "body": msg.body.decode("utf-8", "replace"),
                       "properties": msg.properties})


def blocking(cs: str, count: int) -> None:
    with c2d.DeviceClient.connect(cs, **options()) as device:
        for n, msg in enumerate(device.messages(), 1):
            print(line(msg))
            msg.complete()
            if n == count:
                break


async def with_asyncio(cs: str, count: int) -> None:
    async with await c2d.aio.DeviceClient.connect(cs, **options()) as device:
        n = 0
        async for msg in device.messages():
            print(line(msg))
            await msg.complete()
            n += 1
            if n == count:
                break


def main() -> None:
    cs = os.environ["IOTHUB_DEVICE_CONNECTION_STRING"]
    count = int(os.environ["C2D_COUNT"])
    if "--asyncio" in sys.argv[1:]:
        asyncio.run(with_asyncio(cs, count))
    else:
        blocking(cs, count)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
