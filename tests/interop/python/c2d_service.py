#!/usr/bin/env python3
"""Interop client: c2d's Python ServiceClient (the `c2d` package) sending to a device that
an official device SDK runs: C2D_COUNT messages with the message id `<run>-<seq>`, the body
`c2d-<run>-<seq>`, ack=full and the properties run, seq and C2D_PROPERTIES; then each
message's own outcome, which must be Success.

env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE, C2D_DEVICE_ID, C2D_COUNT (1),
     C2D_RUN_ID, C2D_PROPERTIES (JSON), SERVICE_TRANSPORT (amqp | amqp_ws), TIMEOUT_S (60),
     IOTHUB_AMQP_PORT / IOTHUB_WS_PORT (a hub on other ports), C2D_RATE (1: the benchmark,
     C2D_COUNT sends one after another without feedback; prints RATE <msg/s>),
     C2D_CONCURRENT (1, with C2D_RATE=1: the C2D_COUNT sends at once from c2d.aio, with
     asyncio.gather).
The last stdout line is 'OK: ...' or 'FAIL: ...'.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import c2d
import c2d.aio


def setting(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def main() -> int:
    device = setting("C2D_DEVICE_ID")
    run = setting("C2D_RUN_ID", "py-service")
    count = int(setting("C2D_COUNT", "1"))
    timeout = float(setting("TIMEOUT_S", "60"))
    extra = {str(k): str(v) for k, v in json.loads(setting("C2D_PROPERTIES", "{}")).items()}
    options: "dict[str, Any]" = {
        "transport": c2d.ServiceTransport(setting("SERVICE_TRANSPORT", "amqp")),
        "trusted_ca_file": setting("IOTHUB_CA_FILE") or None,
        "amqp_port": int(setting("IOTHUB_AMQP_PORT", "0")) or None,
        "https_port": int(setting("IOTHUB_WS_PORT", "0")) or None,
    }
    if setting("C2D_RATE") == "1" and setting("C2D_CONCURRENT") == "1":
        return asyncio.run(send_concurrently(device, count, options))
    with c2d.ServiceClient.connect(setting("IOTHUB_SERVICE_CONNECTION_STRING"), **options) as service:
        if setting("C2D_RATE") == "1":
            # the benchmark: sends one after another, each answered by the hub, no feedback
            service.send(device, "warm-up")
            started = time.perf_counter()
            for i in range(count):
                service.send(device, c2d.Message(f"reading {i}", properties={"seq": str(i)}))
            elapsed = time.perf_counter() - started
            print(f"OK: RATE {count / elapsed:.0f} msg/s ({count} sends in {elapsed:.2f} s)", flush=True)
            return 0
        sent = []
        for seq in range(1, count + 1):
            props = {"run": run, "seq": str(seq), **extra}
            s = service.send(device, c2d.Message(f"c2d-{run}-{seq}", ack=c2d.Ack.FULL,
                                                 message_id=f"{run}-{seq}", properties=props))
            print(json.dumps({"event": "sent", "messageId": s.message_id}), flush=True)
            sent.append(s)
        wrong = []
        for s in sent:
            record = s.outcome(timeout=timeout)
            print(json.dumps({"event": "feedback", "messageId": record.original_message_id,
                              "status": record.status.value}), flush=True)
            if record.status != c2d.FeedbackStatus.SUCCESS or record.device_id != device:
                wrong.append(f"{s.message_id}: {record.status.value} from {record.device_id}")
    if wrong:
        print("FAIL: " + "; ".join(wrong), flush=True)
        return 1
    print(f"OK: c2d Python service sent {count} messages to {device}; each outcome Success", flush=True)
    return 0


async def send_concurrently(device: str, count: int, options: "dict[str, Any]") -> int:
    """The benchmark of a back end that sends at once: every send awaited together, each
    answered by the hub once the message is durable."""
    cs = setting("IOTHUB_SERVICE_CONNECTION_STRING")
    async with await c2d.aio.ServiceClient.connect(cs, **options) as service:
        await service.send(device, "warm-up")
        started = time.perf_counter()
        await asyncio.gather(*(service.send(device, c2d.Message(f"reading {i}", properties={"seq": str(i)}))
                               for i in range(count)))
        elapsed = time.perf_counter() - started
    print(f"OK: RATE {count / elapsed:.0f} msg/s ({count} concurrent sends in {elapsed:.2f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
