#!/usr/bin/env python3
"""A back-end application: sends three commands to a device with ack=full and prints each
command's own outcome as the hub reports it; exits non-zero unless every outcome is the
expected one (reboot: Success, update: Success after a retry, dance: Rejected).

env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_DEVICE_ID,
C2D_AMQP_PORT and C2D_HTTPS_PORT (optional).
"""

from __future__ import annotations

import os
import sys

import c2d

EXPECTED = [
    ("reboot", c2d.FeedbackStatus.SUCCESS),
    ("update", c2d.FeedbackStatus.SUCCESS),
    ("dance", c2d.FeedbackStatus.REJECTED),
]


def port(name: str) -> "int | None":
    value = os.environ.get(name)
    return int(value) if value else None


def main() -> int:
    device = os.environ["C2D_DEVICE_ID"]
    with c2d.ServiceClient.connect(
        os.environ["IOTHUB_SERVICE_CONNECTION_STRING"],
        trusted_ca_file=os.environ.get("IOTHUB_CA_FILE") or None,
        amqp_port=port("C2D_AMQP_PORT"),
        https_port=port("C2D_HTTPS_PORT"),
    ) as service:
        sent = []
        for command, expected in EXPECTED:
            message = c2d.Message(f"{command} now", ack=c2d.Ack.FULL, ttl=600.0,
                                  properties={"command": command})
            s = service.send(device, message)
            print(f"backend: sent {command} as {s.message_id}", flush=True)
            sent.append((command, expected, s))
        wrong = 0
        for command, expected, s in sent:
            record = s.outcome(timeout=60.0)
            print(f"backend: {command}: {record.status.value}", flush=True)
            if record.status != expected:
                print(f"backend: {command}: expected {expected.value}", file=sys.stderr)
                wrong += 1
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
