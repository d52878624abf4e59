"""An awaited receive that is cancelled leaves its message to the next receive, never to
nobody: a task cancelled just as its message arrives (the event loop busy in a blocking call
meanwhile), and ``asyncio.wait_for`` timeouts racing arrivals. The hub's lock is 5 s and the
checks take less, so a message that was given up instead of handed back would be missed."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import c2d
import c2d.aio
from c2d.testing import LocalHub

#: The hub's lock: a message given up would come back only after it.
LOCK = 5.0

CONNECTION_TRANSPORTS = [c2d.Transport.MQTT, c2d.Transport.AMQP]


@pytest.mark.parametrize("transport", CONNECTION_TRANSPORTS, ids=lambda t: t.value)
@pytest.mark.asyncio
async def test_a_task_cancelled_as_its_message_arrives_leaves_it_to_the_next_receive(
    transport: c2d.Transport,
) -> None:
    with LocalHub(lock_timeout=LOCK) as hub:
        cs = hub.create_device("dev1")
        with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
            device = await c2d.aio.DeviceClient.connect(cs, transport=transport, **hub.device_options())
            # more than the client may hold unsettled (16): each message lost to a cancel
            # used to hold its place until the connection ended
            for i in range(20):
                task = asyncio.ensure_future(device.receive())
                await asyncio.sleep(0.01)  # the task now waits in the engine
                # the loop blocks while the message arrives and the engine hands it over;
                # the task is cancelled before the loop can give it the message
                svc.send("dev1", f"m{i}")
                time.sleep(0.2)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # the next receive has it at once, not after the lock (5 s)
                m = await device.receive(timeout=1.0)
                assert m is not None, f"m{i} was lost to a cancelled receive"
                assert m.body == f"m{i}".encode()
                await m.complete()
            await device.close()
        assert hub.queue_depth("dev1") == 0


@pytest.mark.parametrize("transport", CONNECTION_TRANSPORTS, ids=lambda t: t.value)
@pytest.mark.asyncio
async def test_wait_for_timeouts_racing_arrivals_lose_nothing(transport: c2d.Transport) -> None:
    with LocalHub(lock_timeout=LOCK) as hub:
        cs = hub.create_device("dev1")
        device = await c2d.aio.DeviceClient.connect(cs, transport=transport, **hub.device_options())
        count = 40

        def send() -> None:
            with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
                for i in range(count):
                    svc.send("dev1", f"m{i}")
                    time.sleep(0.002)

        sender = threading.Thread(target=send)
        sender.start()
        bodies: "list[bytes]" = []
        started = time.monotonic()
        while len(bodies) < count and time.monotonic() - started < LOCK - 0.5:
            try:
                m = await asyncio.wait_for(device.receive(), 0.001)
            except asyncio.TimeoutError:
                continue
            assert m is not None
            bodies.append(m.body)
            await m.complete()
        sender.join()
        assert sorted(bodies) == sorted(f"m{i}".encode() for i in range(count)), "lost or doubled"
        await device.close()
