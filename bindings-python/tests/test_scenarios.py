"""The scenario list (complete; reject → Rejected; abandon → redelivery; max delivery →
DeliveryCountExceeded; TTL → Expired; purge → Purged; lock expiry → redelivery; queue full;
too large; unknown device; bad token; closed client) on every device transport, through the
blocking API and through asyncio."""

from __future__ import annotations

import pathlib

import pytest

import c2d
import c2d.aio
from c2d.testing import LocalHub

from conftest import POLL, TRANSPORTS, WAIT, ConnectProxy, fast_retry, settles_all


def received(device: c2d.DeviceClient) -> c2d.ReceivedMessage:
    m = device.receive(timeout=WAIT)
    assert m is not None, f"no message within {WAIT} s"
    return m


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_scenarios_blocking(hub: LocalHub, transport: c2d.Transport) -> None:
    with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
        cs = svc.registry.create_device("dev1").connection_string
        assert cs is not None
        device = c2d.DeviceClient.connect(cs, transport=transport, retry=fast_retry(), poll_interval=POLL, **hub.device_options())
        assert device.transport == transport
        connected = device.status
        assert connected.state == c2d.ConnectionState.CONNECTED

        # complete → Success, with what the sender set kept
        sent = svc.send("dev1", c2d.Message("hello", ack=c2d.Ack.FULL, correlation_id="c-1",
                                            content_type="text/plain", properties={"colour": "blue"}))
        m = received(device)
        assert (m.body, m.message_id, m.correlation_id) == (b"hello", sent.message_id, "c-1")
        assert m.properties["colour"] == "blue"
        assert m.ack == c2d.Ack.FULL and m.delivery_count == 0
        if settles_all(transport):  # MQTT's topic carries no enqueued time
            assert m.enqueued_time is not None and m.enqueued_time.tzinfo is not None
        m.complete()
        assert m.settled
        record = sent.outcome(timeout=WAIT)
        assert record.status == c2d.FeedbackStatus.SUCCESS
        assert (record.device_id, record.original_message_id) == ("dev1", sent.message_id)

        # reject → Rejected; abandon → redelivery; the last allowed abandon → DeliveryCountExceeded
        rejected = svc.send("dev1", c2d.Message(b"reject me", ack=c2d.Ack.FULL))
        m = received(device)
        if settles_all(transport):
            m.reject()
            assert rejected.outcome(timeout=WAIT).status == c2d.FeedbackStatus.REJECTED
            abandoned = svc.send("dev1", c2d.Message(b"abandon me", ack=c2d.Ack.FULL))
            for count in range(3):
                m = received(device)
                assert (m.body, m.delivery_count) == (b"abandon me", count)
                m.abandon()
            assert abandoned.outcome(timeout=WAIT).status == c2d.FeedbackStatus.DELIVERY_COUNT_EXCEEDED
        else:
            with pytest.raises(c2d.UnsupportedError):
                m.reject()
            with pytest.raises(c2d.UnsupportedError):
                m.abandon()
            # refused, and nothing changed: the message is still the application's to
            # complete (a poison message it cannot dead-letter need not come back for ever)
            assert not m.settled
            m.complete()
            assert m.settled
            assert rejected.outcome(timeout=WAIT).status == c2d.FeedbackStatus.SUCCESS

        # unknown device; TTL → Expired (the clock passes the expiry; no device involved)
        with pytest.raises(c2d.DeviceNotFoundError):
            svc.send("nobody", b"x")
        svc.registry.create_device("offline")
        expiring = svc.send("offline", c2d.Message(b"late", ack=c2d.Ack.NEGATIVE, ttl=30.0))
        hub.advance_clock(31)
        assert expiring.outcome(timeout=WAIT).status == c2d.FeedbackStatus.EXPIRED

        # purge → Purged
        purged = svc.send("offline", c2d.Message(b"p", ack=c2d.Ack.FULL))
        assert svc.purge("offline") == 1
        assert purged.outcome(timeout=WAIT).status == c2d.FeedbackStatus.PURGED

        # queue full; too large
        for _ in range(5):
            svc.send("offline", b"fill")
        assert hub.queue_depth("offline") == 5
        with pytest.raises(c2d.QueueFullError):
            svc.send("offline", b"full")
        with pytest.raises(c2d.MessageTooLargeError):
            svc.send("dev1", bytes(2000))

        # lock expiry → redelivery
        svc.send("dev1", b"slow")
        first = received(device)
        hub.advance_clock(61)
        second = received(device)
        assert second.body == b"slow"
        second.complete()
        if transport == c2d.Transport.HTTPS:
            # the hub ended the first lock: its token is refused (412)
            with pytest.raises(c2d.MessageLockLostError):
                first.complete()
        del first

        # feedback(): every record
        feedback = svc.feedback()
        watched = svc.send("dev1", c2d.Message(b"watched", ack=c2d.Ack.POSITIVE))
        received(device).complete()
        while True:
            r = feedback.next(timeout=WAIT)
            assert r is not None, "no feedback record"
            if r.original_message_id == watched.message_id:
                break
        assert r.status == c2d.FeedbackStatus.SUCCESS

        # bad token: refused, and not retried
        bad = cs.replace("SharedAccessKey=", "SharedAccessKey=AAAA")
        with pytest.raises(c2d.UnauthorizedError):
            c2d.DeviceClient.connect(bad, transport=transport, retry=fast_retry(), poll_interval=POLL, **hub.device_options())

        # closed clients
        device.close()
        closed = device.status
        assert closed == c2d.ConnectionStatus(c2d.ConnectionState.DISCONNECTED, "closed")
        assert list(device.messages()) == []
        with pytest.raises(c2d.ClosedError):
            device.receive(timeout=1)
    with pytest.raises(c2d.ClosedError):
        svc.send("dev1", b"x")


async def areceived(device: c2d.aio.DeviceClient) -> c2d.aio.ReceivedMessage:
    m = await device.receive(timeout=WAIT)
    assert m is not None, f"no message within {WAIT} s"
    return m


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
@pytest.mark.asyncio
async def test_scenarios_asyncio(hub: LocalHub, transport: c2d.Transport) -> None:
    async with await c2d.aio.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
        cs = (await svc.registry.create_device("dev1")).connection_string
        assert cs is not None
        device = await c2d.aio.DeviceClient.connect(cs, transport=transport, retry=fast_retry(), poll_interval=POLL, **hub.device_options())

        sent = await svc.send("dev1", c2d.Message("hello", ack=c2d.Ack.FULL, properties={"colour": "blue"}))
        async for m in device.messages():
            assert (m.body, m.message_id, m.properties["colour"]) == (b"hello", sent.message_id, "blue")
            await m.complete()
            break
        assert (await sent.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.SUCCESS

        rejected = await svc.send("dev1", c2d.Message(b"reject me", ack=c2d.Ack.FULL))
        m = await areceived(device)
        if settles_all(transport):
            await m.reject()
            assert (await rejected.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.REJECTED
            abandoned = await svc.send("dev1", c2d.Message(b"abandon me", ack=c2d.Ack.FULL))
            for count in range(3):
                m = await areceived(device)
                assert m.delivery_count == count
                await m.abandon()
            assert (await abandoned.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.DELIVERY_COUNT_EXCEEDED
        else:
            with pytest.raises(c2d.UnsupportedError):
                await m.reject()
            with pytest.raises(c2d.UnsupportedError):
                await m.abandon()
            # refused, and nothing changed: the message is still the application's to complete
            assert not m.settled
            await m.complete()
            assert (await rejected.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.SUCCESS

        with pytest.raises(c2d.DeviceNotFoundError):
            await svc.send("nobody", b"x")
        await svc.registry.create_device("offline")
        expiring = await svc.send("offline", c2d.Message(b"late", ack=c2d.Ack.NEGATIVE, ttl=30.0))
        hub.advance_clock(31)
        assert (await expiring.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.EXPIRED

        purged = await svc.send("offline", c2d.Message(b"p", ack=c2d.Ack.FULL))
        assert await svc.purge("offline") == 1
        assert (await purged.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.PURGED

        for _ in range(5):
            await svc.send("offline", b"fill")
        with pytest.raises(c2d.QueueFullError):
            await svc.send("offline", b"full")
        with pytest.raises(c2d.MessageTooLargeError):
            await svc.send("dev1", bytes(2000))

        await svc.send("dev1", b"slow")
        first = await areceived(device)
        hub.advance_clock(61)
        second = await areceived(device)
        assert second.body == b"slow"
        await second.complete()
        if transport == c2d.Transport.HTTPS:
            with pytest.raises(c2d.MessageLockLostError):
                await first.complete()
        del first

        feedback = svc.feedback()
        watched = await svc.send("dev1", c2d.Message(b"watched", ack=c2d.Ack.POSITIVE))
        await (await areceived(device)).complete()
        async for r in feedback:
            if r.original_message_id == watched.message_id:
                assert r.status == c2d.FeedbackStatus.SUCCESS
                break

        bad = cs.replace("SharedAccessKey=", "SharedAccessKey=AAAA")
        with pytest.raises(c2d.UnauthorizedError):
            await c2d.aio.DeviceClient.connect(bad, transport=transport, retry=fast_retry(), poll_interval=POLL, **hub.device_options())

        await device.close()
        assert [m async for m in device.messages()] == []
        with pytest.raises(c2d.ClosedError):
            await device.receive(timeout=1)
    with pytest.raises(c2d.ClosedError):
        await svc.send("dev1", b"x")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_x509_device(hub: LocalHub, transport: c2d.Transport, tmp_path: pathlib.Path) -> None:
    """An X.509 device receives with its certificate (in memory, or from files); another
    device's certificate is refused by the hub; ``x509=true`` without one is refused at once."""
    me = hub.create_x509_device("x1")
    other = hub.create_x509_device("x2")
    assert me.connection_string.endswith(";x509=true")
    options = dict(transport=transport, retry=c2d.RetryPolicy.none(), poll_interval=POLL, **hub.device_options())
    with c2d.ServiceClient.connect(hub.service_connection_string, **hub.service_options()) as svc:
        with c2d.DeviceClient.connect(me.connection_string, cert=me.cert_pem, key=me.key_pem.encode(), **options) as dev:
            sent = svc.send("x1", c2d.Message(b"by certificate", ack=c2d.Ack.FULL))
            received(dev).complete()
            assert sent.outcome(timeout=WAIT).status == c2d.FeedbackStatus.SUCCESS
        (tmp_path / "x1.pem").write_text(me.cert_pem)
        (tmp_path / "x1.key").write_text(me.key_pem)
        with c2d.DeviceClient.connect(me.connection_string, cert_file=tmp_path / "x1.pem",
                                      key_file=tmp_path / "x1.key", **options) as dev:
            svc.send("x1", b"from files")
            m = received(dev)
            assert m.body == b"from files"
            m.complete()
    with pytest.raises(c2d.UnauthorizedError):
        c2d.DeviceClient.connect(me.connection_string, cert=other.cert_pem, key=other.key_pem, **options)
    with pytest.raises(c2d.InvalidArgumentError):
        c2d.DeviceClient.connect(me.connection_string, **options)
    with pytest.raises(c2d.InvalidArgumentError):
        c2d.DeviceClient.connect(me.connection_string, cert=me.cert_pem, **options)
    with pytest.raises(c2d.InvalidArgumentError):
        c2d.DeviceClient.connect(me.connection_string, cert=me.cert_pem, key="not a key", **options)


def test_proxy(hub: LocalHub, proxy: ConnectProxy) -> None:
    """Every transport a proxy carries, on the device and the service, through a real CONNECT
    proxy with basic authentication; wrong proxy credentials; a proxy with plain MQTT."""
    svc_options = dict(hub.service_options(), transport=c2d.ServiceTransport.AMQP_WS, proxy=proxy.url())
    with c2d.ServiceClient.connect(hub.owner_connection_string, **svc_options) as svc:
        cs = svc.registry.create_device("dev1").connection_string
        assert cs is not None
        https = f"localhost:{hub.https_port}"
        assert proxy.tunnels and set(proxy.tunnels) == {https}
        for transport in (c2d.Transport.MQTT_WS, c2d.Transport.AMQP_WS, c2d.Transport.HTTPS):
            before = len(proxy.tunnels)
            with c2d.DeviceClient.connect(cs, transport=transport, retry=c2d.RetryPolicy.none(), poll_interval=POLL,
                                          proxy=proxy.url(), **hub.device_options()) as dev:
                assert len(proxy.tunnels) > before, f"{transport} did not use the proxy"
                sent = svc.send("dev1", c2d.Message(b"via proxy", ack=c2d.Ack.FULL))
                received(dev).complete()
                assert sent.outcome(timeout=WAIT).status == c2d.FeedbackStatus.SUCCESS
            with pytest.raises(c2d.UnauthorizedError):
                c2d.DeviceClient.connect(cs, transport=transport, retry=c2d.RetryPolicy.none(),
                                         proxy=proxy.url("wrong"), **hub.device_options())
        assert set(proxy.tunnels) == {https}
        with pytest.raises(c2d.InvalidArgumentError):
            c2d.DeviceClient.connect(cs, transport=c2d.Transport.MQTT, proxy=proxy.url(), **hub.device_options())
        with pytest.raises(c2d.InvalidArgumentError):
            c2d.DeviceClient.connect(cs, transport=c2d.Transport.HTTPS, proxy="socks5://127.0.0.1:1")


@pytest.mark.asyncio
async def test_feedback_batching_follows_a_manual_clock() -> None:
    # as documented at outcome() and LocalHub: after one feedback batch, the next record goes
    # out only when the hub's clock has passed the feedback interval
    with LocalHub(manual_clock=True, feedback_interval=15.0) as hub:
        cs = hub.create_device("dev1")
        async with await c2d.aio.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
            device = await c2d.aio.DeviceClient.connect(cs, **hub.device_options())
            first = await svc.send("dev1", c2d.Message("one", ack=c2d.Ack.FULL))
            second = await svc.send("dev1", c2d.Message("two", ack=c2d.Ack.FULL))
            for _ in range(2):
                await (await areceived(device)).complete()
            assert (await first.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.SUCCESS
            with pytest.raises(c2d.OperationTimeoutError):
                await second.outcome(timeout=1.0)
            hub.advance_clock(15.0)
            assert (await second.outcome(timeout=WAIT)).status == c2d.FeedbackStatus.SUCCESS
            await device.close()
