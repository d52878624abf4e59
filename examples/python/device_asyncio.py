#!/usr/bin/env python3
"""The device application of device.py, with asyncio: the same commands, the same
settlements, awaited.

env: as device.py.
"""

from __future__ import annotations

import asyncio
import os
from typing import Optional

import c2d
import c2d.aio


async def main() -> None:
    count: Optional[int] = int(os.environ["C2D_COUNT"]) if os.environ.get("C2D_COUNT") else None
    port = int(os.environ["C2D_PORT"]) if os.environ.get("C2D_PORT") else None
    transport = c2d.Transport(os.environ.get("C2D_TRANSPORT", "amqp"))
    device = await c2d.aio.DeviceClient.connect(
        os.environ["IOTHUB_DEVICE_CONNECTION_STRING"],
        transport=transport,
        trusted_ca_file=os.environ.get("IOTHUB_CA_FILE") or None,
        port=port,
    )
    async with device:
        print(f"device (asyncio): connected over {transport.value}", flush=True)
        handled = 0
        async for msg in device.messages():
            command = msg.properties.get("command", "")
            if command == "reboot" or (command == "update" and msg.delivery_count > 0):
                print(f"device (asyncio): {command} ({msg.body.decode()})", flush=True)
                await msg.complete()
            elif command == "update":
                print("device (asyncio): busy, update later", flush=True)
                await msg.abandon()
                continue
            else:
                print(f"device (asyncio): unknown command {command!r}, refused", flush=True)
                await msg.reject()
            handled += 1
            if count is not None and handled >= count:
                break


if __name__ == "__main__":
    asyncio.run(main())
