"""Every test starts its own hub: a real c2d hub in this process, on free ports, with a
manual clock and small limits so that every rule can be reached quickly."""

from __future__ import annotations

from typing import Iterator

import pytest

import c2d
from c2d.testing import LocalHub

#: The device transports, each run through the whole scenario list.
TRANSPORTS = list(c2d.Transport)
#: How often the HTTPS devices of the tests poll (a local hub does not throttle).
POLL = 0.05
#: How long a test waits for something that should come at once.
WAIT = 15.0


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub(
        manual_clock=True,
        feedback_interval=0.0,
        max_delivery_count=3,
        max_queue_depth=5,
        max_message_size=1000,
    ) as h:
        yield h


def settles_all(transport: c2d.Transport) -> bool:
    """Whether the transport can reject and abandon (and says when a message was enqueued):
    every transport but MQTT's."""
    return transport not in (c2d.Transport.MQTT, c2d.Transport.MQTT_WS)


def fast_retry() -> c2d.RetryPolicy:
    return c2d.RetryPolicy.fixed(0.1, max_retries=50)
