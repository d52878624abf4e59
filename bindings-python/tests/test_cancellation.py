"""An awaited receive that is cancelled leaves its message to the next receive, never to
nobody: a task cancelled just as its message arrives (the event loop busy in a blocking call
meanwhile), ``asyncio.wait_for`` timeouts racing arrivals, and a hundred receives each racing
one send. Every other call that waits is cancelled the same way, call by call, and loses
nothing; a blocking call in another thread is woken by ``close()``. The hub's lock is 5 s and
the checks take less, so a message that was given up instead of handed back would be
missed."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import c2d
import c2d.aio
from c2d.testing import LocalHub

from conftest import WAIT

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


@pytest.mark.parametrize("transport", CONNECTION_TRANSPORTS, ids=lambda t: t.value)
@pytest.mark.asyncio
async def test_a_hundred_receives_each_cancelled_racing_one_send_lose_nothing(
    transport: c2d.Transport,
) -> None:
    rounds = 100
    with LocalHub(lock_timeout=60.0, max_queue_depth=rounds) as hub:
        cs = hub.create_device("dev1")
        device = await c2d.aio.DeviceClient.connect(cs, transport=transport, **hub.device_options())
        seen: "dict[bytes, int]" = {}
        cancelled = 0
        async with await c2d.aio.ServiceClient.connect(hub.service_connection_string,
                                                       **hub.service_options()) as svc:
            for i in range(rounds):
                task = asyncio.ensure_future(device.receive())
                # the hub delivers a message before it answers its send (it answers once the
                # message is on disk or completed): the receive is cancelled 0-2 ms after the
                # send went out, before the message can have arrived or after, with the
                # arrival in between
                sending = asyncio.ensure_future(svc.send("dev1", f"m{i}"))
                await asyncio.sleep((i % 5) * 0.0005)
                task.cancel()
                try:
                    m = await task
                except asyncio.CancelledError:
                    cancelled += 1
                    await sending
                    continue
                assert m is not None
                seen[m.body] = seen.get(m.body, 0) + 1
                await m.complete()
                await sending
            while sum(seen.values()) < rounds:
                m = await device.receive(timeout=WAIT)
                assert m is not None, f"lost: {sorted(set(f'm{i}'.encode() for i in range(rounds)) - set(seen))}"
                seen[m.body] = seen.get(m.body, 0) + 1
                await m.complete()
        assert cancelled > 0
        assert seen == {f"m{i}".encode(): 1 for i in range(rounds)}, "each message exactly once"
        assert await device.receive(timeout=0.3) is None, "a message came twice"
        await device.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a TLS handshake waits)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: "list[socket.socket]" = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept)
    t.start()
    yield server.getsockname()[1]
    stop.set()
    t.join()
    for c in accepted:
        c.close()
    server.close()


@pytest.mark.asyncio
async def test_a_connect_to_a_hub_that_never_answers_is_cancelled_at_once(silent_port: int) -> None:
    cs = "HostName=localhost;DeviceId=dev1;SharedAccessKey=a2V5"
    service_cs = "HostName=localhost;SharedAccessKeyName=service;SharedAccessKey=a2V5"
    connects: "list[Callable[[], Any]]" = [
        lambda: c2d.aio.DeviceClient.connect(cs, port=silent_port, transport=c2d.Transport.MQTT),
        lambda: c2d.aio.DeviceClient.connect(cs, port=silent_port, transport=c2d.Transport.AMQP),
        lambda: c2d.aio.ServiceClient.connect(service_cs, port=silent_port),
    ]
    for connect in connects:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(connect(), 0.3)
        # the default operation timeout is 30 s: the cancel, not a timeout, ended it
        assert time.monotonic() - started < 10


@pytest.mark.asyncio
async def test_each_service_call_that_waits_is_cancelled_and_loses_nothing() -> None:
    with LocalHub(feedback_interval=0.0) as hub:
        cs = hub.create_device("dev1")
        async with await c2d.aio.ServiceClient.connect(hub.owner_connection_string,
                                                       **hub.service_options()) as svc:
            device = await c2d.aio.DeviceClient.connect(cs, transport=c2d.Transport.AMQP,
                                                         **hub.device_options())
            sent = await svc.send("dev1", c2d.Message("hello", ack=c2d.Ack.FULL))
            feedback = svc.feedback()
            # outcome and the feedback stream, cancelled while they wait: they take nothing
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sent.outcome(), 0.1)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(feedback.next(), 0.1)
            m = await device.receive(timeout=WAIT)
            assert m is not None
            await m.complete()
            record = await sent.outcome(timeout=WAIT)
            assert record.status == c2d.FeedbackStatus.SUCCESS
            streamed = await feedback.next(timeout=WAIT)
            assert streamed is not None and streamed.original_message_id == sent.message_id
            # a send, a purge and the registry calls cancelled before they are answered
            # leave the client usable (a cancelled send may have reached the hub)
            for call in (lambda: svc.send("dev1", "maybe"), lambda: svc.purge("dev1"),
                         lambda: svc.registry.create_device("dev2"),
                         lambda: svc.registry.get_device("dev1"),
                         lambda: svc.registry.list_devices()):
                task = asyncio.ensure_future(call())
                await asyncio.sleep(0)
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, c2d.C2DError):
                    pass
            after = await svc.send("dev1", "after the cancellations")
            while True:
                m = await device.receive(timeout=WAIT)
                assert m is not None, "the send after the cancellations did not arrive"
                await m.complete()
                if m.message_id == after.message_id:
                    break
                assert m.body == b"maybe", m.body
            assert (await svc.registry.get_device("dev1")).device_id == "dev1"
            await device.close()


@pytest.mark.asyncio
async def test_an_https_settle_cancelled_while_it_waits_leaves_the_client_usable() -> None:
    with LocalHub(lock_timeout=LOCK) as hub:
        cs = hub.create_device("dev1")
        svc = c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options())
        svc.send("dev1", "once")
        device = await c2d.aio.DeviceClient.connect(cs, transport=c2d.Transport.HTTPS, poll_interval=0.05,
                                                     **hub.device_options())
        m = await device.receive(timeout=WAIT)
        assert m is not None
        task = asyncio.ensure_future(m.complete())
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # the request may or may not have reached the hub: if not, "once" comes back after
        # its lock; either way the client goes on, and nothing is left queued
        svc.send("dev1", "next")
        bodies: "list[bytes]" = []
        while b"next" not in bodies or hub.queue_depth("dev1") > 0:
            m = await device.receive(timeout=LOCK + WAIT)
            assert m is not None, f"nothing more came; queue depth {hub.queue_depth('dev1')}"
            bodies.append(m.body)
            await m.complete()
        assert set(bodies) <= {b"once", b"next"}
        await device.close()
        svc.close()


def test_close_from_another_thread_wakes_each_blocking_call() -> None:
    with LocalHub(feedback_interval=0.0) as hub:
        cs = hub.create_device("dev1")
        for transport in CONNECTION_TRANSPORTS:
            device = c2d.DeviceClient.connect(cs, transport=transport, **hub.device_options())
            woken = wait_in_thread(device.receive)
            device.close()
            assert isinstance(woken(), c2d.ClosedError), transport
        svc = c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options())
        sent = svc.send("dev1", c2d.Message("never settled", ack=c2d.Ack.FULL))
        outcome = wait_in_thread(sent.outcome)
        feedback = wait_in_thread(svc.feedback().next)
        svc.close()
        assert isinstance(outcome(), c2d.ClosedError)
        assert isinstance(feedback(), c2d.ClosedError)
        assert hub.queue_depth("dev1") == 1, "the message no receive took is still queued"


def wait_in_thread(call: "Callable[[], Any]") -> "Callable[[], Any]":
    """Runs `call` (waiting without a timeout) in a thread; returns what gives its result or
    exception once it ended, which must be within WAIT of being asked."""
    result: "list[Any]" = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as e:  # noqa: BLE001 - the exception is the result
            result.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(0.2)
    assert not result, "the call did not wait"

    def ended() -> Any:
        t.join(WAIT)
        assert not t.is_alive(), "close() did not wake the waiting call"
        return result[0]

    return ended
