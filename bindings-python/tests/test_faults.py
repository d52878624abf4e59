"""Faults on demand in a real hub (``hub.faults``) as c2d's Python clients see them, and
duplicate suppression on the device — in memory, and in a file across a real kill -9 of
the device's process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Callable

import pytest

import c2d
import c2d.aio
from c2d.testing import LocalHub

from conftest import POLL, WAIT, fast_retry


def device(
    hub: LocalHub, cs: str, transport: c2d.Transport, suppress_duplicates: bool = False
) -> c2d.DeviceClient:
    return c2d.DeviceClient.connect(
        cs,
        transport=transport,
        retry=fast_retry(),
        poll_interval=POLL,
        suppress_duplicates=suppress_duplicates,
        **hub.device_options(),
    )


def eventually(what: str, pred: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not pred():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("transport", [c2d.Transport.MQTT, c2d.Transport.AMQP_WS])
def test_a_dropped_connection_is_seen_and_the_device_reconnects(
    hub: LocalHub, transport: c2d.Transport
) -> None:
    cs = hub.create_device("dev")
    with device(hub, cs, transport) as d, c2d.ServiceClient.connect(
        hub.owner_connection_string, **hub.service_options()
    ) as svc:
        states: "list[c2d.ConnectionState]" = []
        changes = d.status_changes()
        seen = threading.Event()

        def watch() -> None:
            for s in changes:
                states.append(s.state)
                if s.state is c2d.ConnectionState.CONNECTED and c2d.ConnectionState.DISCONNECTED in states:
                    seen.set()
                    return

        threading.Thread(target=watch, daemon=True).start()
        assert hub.faults.drop_connections("dev") == 1
        assert seen.wait(WAIT), states
        svc.send("dev", c2d.Message("after the drop"))
        m = d.receive(timeout=WAIT)
        assert m is not None and m.body == b"after the drop"
        m.complete()


@pytest.mark.parametrize("transport", [c2d.Transport.MQTT, c2d.Transport.AMQP, c2d.Transport.HTTPS])
@pytest.mark.parametrize("suppress", [False, True])
def test_a_lost_ack_brings_the_message_again_unless_duplicates_are_suppressed(
    hub: LocalHub, transport: c2d.Transport, suppress: bool
) -> None:
    cs = hub.create_device("dev")
    with device(hub, cs, transport, suppress_duplicates=suppress) as d, c2d.ServiceClient.connect(
        hub.owner_connection_string, **hub.service_options()
    ) as svc:
        svc.send("dev", c2d.Message("first", message_id="m1"))
        m = d.receive(timeout=WAIT)
        assert m is not None and m.body == b"first"
        hub.faults.lose_acks("dev", 1)
        assert hub.faults.active() == [{"fault": "lose-acks", "device": "dev", "count": 1}]
        m.complete()
        eventually("the ack lost", lambda: hub.faults.acks_lost == 1)
        assert hub.queue_depth("dev") == 1
        assert hub.faults.expire_locks() == 1
        svc.send("dev", c2d.Message("second", message_id="m2"))
        nxt = d.receive(timeout=WAIT)
        assert nxt is not None
        if suppress:
            assert nxt.body == b"second"
            nxt.complete()
            eventually("both settled", lambda: hub.queue_depth("dev") == 0)
            assert d.duplicates_suppressed == 1
        else:
            assert nxt.body == b"first", "handed over again"
            nxt.complete()
            assert d.duplicates_suppressed == 0


def test_refused_sends_raise_their_errors_and_transient_ones_are_retried(hub: LocalHub) -> None:
    hub.create_device("dev")
    with c2d.ServiceClient.connect(
        hub.owner_connection_string, retry=c2d.RetryPolicy.none(), **hub.service_options()
    ) as once:
        hub.faults.refuse_sends("throttled", count=1)
        with pytest.raises(c2d.ThrottledError, match="429001"):
            once.send("dev", c2d.Message("x"))
        hub.faults.refuse_sends("busy", count=1)
        with pytest.raises(c2d.UnavailableError, match="503001"):
            once.send("dev", c2d.Message("x"))
        hub.faults.refuse_sends("quota", count=1)
        with pytest.raises(c2d.QuotaExceededError, match="403002"):
            once.send("dev", c2d.Message("x"))
        once.send("dev", c2d.Message("through"))
        with pytest.raises(c2d.InvalidArgumentError, match="count or a duration"):
            hub.faults.refuse_sends("busy")
    assert hub.refusals("fault") == 3
    with c2d.ServiceClient.connect(
        hub.owner_connection_string, retry=fast_retry(), **hub.service_options()
    ) as retrying:
        hub.faults.refuse_sends("busy", count=2)
        retrying.send("dev", c2d.Message("retried"))
    assert hub.refusals("fault") == 5
    assert hub.queue_depth("dev") == 2


@pytest.mark.asyncio
async def test_a_delayed_delivery_and_a_stalled_store_with_asyncio(hub: LocalHub) -> None:
    cs = hub.create_device("dev")
    d = await c2d.aio.DeviceClient.connect(cs, transport="amqp", retry=fast_retry(), **hub.device_options())
    svc = await c2d.aio.ServiceClient.connect(hub.owner_connection_string, **hub.service_options())
    try:
        hub.faults.delay_deliveries("dev", 0.3)
        begun = time.monotonic()
        await svc.send("dev", c2d.Message("late"))
        m = await d.receive(timeout=WAIT)
        assert m is not None and time.monotonic() - begun >= 0.3
        await m.complete()
        hub.faults.clear()
        hub.faults.stall_store(0.4)
        begun = time.monotonic()
        await svc.send("dev", c2d.Message("slow disk"))
        assert time.monotonic() - begun >= 0.35
        m = await d.receive(timeout=WAIT)
        assert m is not None and m.body == b"slow disk"
        await m.complete()
    finally:
        await d.close()
        await svc.close()


@pytest.mark.asyncio
async def test_a_send_is_answered_by_its_completion_while_the_disk_is_stalled(hub: LocalHub) -> None:
    # a message its device completes before the hub has written it needs no disk: with the
    # store stalled for a minute, the send is answered by the device's completion
    cs = hub.create_device("quick")
    d = await c2d.aio.DeviceClient.connect(cs, retry=fast_retry(), **hub.device_options())
    svc = await c2d.aio.ServiceClient.connect(hub.owner_connection_string, **hub.service_options())
    try:
        hub.faults.stall_store(60)
        begun = time.monotonic()
        sending = asyncio.create_task(svc.send("quick", c2d.Message("no disk needed")))
        m = await d.receive(timeout=WAIT)
        assert m is not None and m.body == b"no disk needed"
        await m.complete()
        await asyncio.wait_for(sending, WAIT)
        assert time.monotonic() - begun < 60
        assert hub.queue_depth("quick") == 0
    finally:
        hub.faults.clear()
        await d.close()
        await svc.close()


#: A device process: handles one message (its id on stdout), completes it, then waits to be
#: killed; or, run again, reports what it is handed within a few seconds.
DEVICE = textwrap.dedent(
    """
    import sys, time, c2d
    cs, ca, port, dups, mode = sys.argv[1:6]
    d = c2d.DeviceClient.connect(cs, transport="mqtt", trusted_ca=open(ca).read(), port=int(port),
                                 retry=c2d.RetryPolicy.fixed(0.1, max_retries=50),
                                 duplicates_file=dups)
    if mode == "handle":
        m = d.receive(timeout=15)
        print("handled", m.message_id, flush=True)
        m.complete()
        print("completed", flush=True)
        time.sleep(600)
    else:
        m = d.receive(timeout=3)
        print("handed", None if m is None else m.message_id, d.duplicates_suppressed, flush=True)
        d.close()
    """
)


def test_the_duplicates_file_survives_a_kill_9_between_handling_and_the_ack(
    hub: LocalHub, tmp_path: "os.PathLike[str]"
) -> None:
    cs = hub.create_device("dev")
    dups = os.path.join(str(tmp_path), "dev.dups")
    args = [sys.executable, "-c", DEVICE, cs, hub.ca_file, str(hub.mqtt_port), dups]
    with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
        svc.send("dev", c2d.Message("do it once", message_id="job-1"))
    # the device's acknowledgement never reaches the hub: as if it was killed before sending it
    hub.faults.lose_acks("dev", 1)
    child = subprocess.Popen(args + ["handle"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split() == ["handled", "job-1"]
        assert child.stdout.readline().strip() == "completed"
        eventually("the ack lost", lambda: hub.faults.acks_lost == 1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert hub.queue_depth("dev") == 1, "the hub still holds it"
    hub.faults.expire_locks()
    again = subprocess.run(args + ["again"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["handed", "None", "1"], again.stdout
    assert hub.queue_depth("dev") == 0, "settled again by the restarted process"
    # without the file the same message would have been handed over again: the control
    with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
        svc.send("dev", c2d.Message("do it once", message_id="job-1"))
    fresh = os.path.join(str(tmp_path), "other.dups")
    control = subprocess.run(
        [sys.executable, "-c", DEVICE, cs, hub.ca_file, str(hub.mqtt_port), fresh, "again"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert control.stdout.split() == ["handed", "job-1", "0"], control.stdout
