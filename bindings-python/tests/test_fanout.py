"""One message to many devices with ``ServiceClient.send_many``, blocking and asyncio, against
a real hub: a result per device, pacing to a throttled hub's tier, and a run stopped midway."""

from __future__ import annotations

import asyncio
import time
from typing import Iterator, Mapping, Union

import pytest

import c2d
import c2d.aio
from c2d.testing import LocalHub

from conftest import WAIT

DEVICES = [f"dev{i:03}" for i in range(300)]


def fleet(hub: LocalHub, svc: c2d.ServiceClient) -> "dict[str, str]":
    """Registers all but the first 10 devices (returns their connection strings); fills the
    queues of the next 5."""
    connection_strings = {d: hub.create_device(d) for d in DEVICES[10:]}
    for d in DEVICES[10:15]:
        for _ in range(2):
            svc.send(d, "filler")
    return connection_strings


def check_results(
    hub: LocalHub,
    results: "Mapping[str, Union[c2d.SendResult, c2d.aio.SendResult]]",
    summary: c2d.FanOutSummary,
) -> None:
    assert sorted(results) == DEVICES
    for i, d in enumerate(DEVICES):
        r = results[d]
        if i < 10:
            assert r.sent is None and isinstance(r.error, c2d.DeviceNotFoundError), r
            assert hub.queue_depth(d) == 0
        elif i < 15:
            assert r.sent is None and isinstance(r.error, c2d.QueueFullError), r
            assert hub.queue_depth(d) == 2
        else:
            assert r.error is None and r.sent is not None, r
            assert r.sent.message_id == f"cmd-1:{d}"
            assert hub.queue_depth(d) == 1
    assert summary.sent == 285
    assert summary.failed == {"device_not_found": 10, "queue_full": 5}
    assert summary.failed_total == 15
    assert (summary.retried, summary.throttled) == (0, 0)
    assert summary.stopped is None and not summary.cancelled


def test_each_device_gets_its_own_result() -> None:
    with LocalHub(max_queue_depth=2) as hub:
        with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
            connection_strings = fleet(hub, svc)
            # any iterable, taken lazily: a generator here
            run = svc.send_many((d for d in DEVICES), c2d.Message("reboot", message_id="cmd-1"), in_flight=16)
            results = {}
            for r in run:
                assert r.device_id not in results
                results[r.device_id] = r
            check_results(hub, results, run.summary)
            # a real device gets its message
            with c2d.DeviceClient.connect(connection_strings["dev150"], **hub.device_options()) as device:
                m = device.receive(timeout=WAIT)
                assert m is not None and m.body == b"reboot" and m.message_id == "cmd-1:dev150"
                m.complete()


@pytest.mark.asyncio
async def test_each_device_gets_its_own_result_asyncio() -> None:
    with LocalHub(max_queue_depth=2) as hub:
        with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as sync_svc:
            fleet(hub, sync_svc)
        svc = await c2d.aio.ServiceClient.connect(hub.owner_connection_string, **hub.service_options())
        run = svc.send_many(DEVICES, c2d.Message("reboot", message_id="cmd-1"))
        results = {}
        async for r in run:
            results[r.device_id] = r
        check_results(hub, results, run.summary)
        await svc.close()


def test_paced_to_a_throttled_hubs_tier_nothing_is_refused() -> None:
    with LocalHub() as hub:
        ids = [f"t{i}" for i in range(100)]
        for d in ids:
            hub.create_device(d)
        hub.set_throttling("S3", 1, backlog=0.2)
        with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
            started = time.monotonic()
            run = svc.send_many(ids, "x", tier="S3", units=1)
            errors = [r.error for r in run if r.error is not None]
            elapsed = time.monotonic() - started
            assert errors == []
            assert run.summary.sent == 100 and run.summary.throttled == 0
            assert hub.refusals("throttled") == 0
            # 99 intervals of 12 ms at least
            assert elapsed >= 1.18, elapsed
            # unpaced, the hub refuses some; the run retries them and every device gets one
            run = svc.send_many(ids, "y", in_flight=64, retry=c2d.RetryPolicy.exponential_backoff(0.05, 1.0))
            assert [r.error for r in run if r.error is not None] == []
            assert run.summary.sent == 100
            assert run.summary.throttled > 0 and run.summary.retried >= run.summary.throttled
            assert hub.refusals("throttled") == run.summary.throttled
            assert all(hub.queue_depth(d) == 2 for d in ids)


def test_a_stopped_run_reports_what_it_sent() -> None:
    with LocalHub() as hub:
        ids = [f"s{i}" for i in range(200)]
        for d in ids:
            hub.create_device(d)
        with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
            run = svc.send_many(ids, "x", rate=100)
            sent = []
            for r in run:
                assert r.sent is not None
                sent.append(r.device_id)
                if len(sent) == 20:
                    run.stop()
            assert run.summary.cancelled and run.summary.sent == len(sent) < 40
            assert sum(hub.queue_depth(d) for d in ids) == len(sent)


@pytest.mark.asyncio
async def test_a_cancelled_task_starts_no_more_sends() -> None:
    with LocalHub() as hub:
        ids = [f"c{i}" for i in range(200)]
        for d in ids:
            hub.create_device(d)
        svc = await c2d.aio.ServiceClient.connect(hub.owner_connection_string, **hub.service_options())
        run = svc.send_many(ids, "x", rate=100)
        seen = 0

        async def consume() -> None:
            nonlocal seen
            async for r in run:
                assert r.sent is not None
                seen += 1

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        queued = sum(hub.queue_depth(d) for d in ids)
        await asyncio.sleep(0.3)
        assert sum(hub.queue_depth(d) for d in ids) <= queued + 1, "sends went on after the cancel"
        assert 10 <= queued < 100, queued
        await svc.close()


def test_bad_arguments() -> None:
    with LocalHub() as hub:
        with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
            with pytest.raises(c2d.InvalidArgumentError):
                svc.send_many(["a"], "x", rate=5, tier="S1")
            with pytest.raises(c2d.InvalidArgumentError):
                svc.send_many(["a"], "x", tier="B1")
            with pytest.raises(c2d.InvalidArgumentError):
                svc.send_many(["a"], "x", in_flight=0)

            def ids() -> Iterator[str]:
                yield "a"
                raise ValueError("the database went away")

            hub.create_device("a")
            run = svc.send_many(ids(), "x")
            with pytest.raises(ValueError, match="database"):
                list(run)
            assert hub.queue_depth("a") == 1


@pytest.mark.asyncio
async def test_a_hub_started_with_a_tier_throttles_its_registry() -> None:
    # S1: 100 registry operations a minute, one waits its turn (0.6 s), the next is refused
    with LocalHub(tier="S1", units=1, throttle_backlog=0) as hub:
        svc = await c2d.aio.ServiceClient.connect(hub.owner_connection_string, **hub.service_options())
        results = await asyncio.gather(
            *(svc.registry.create_device(f"r{i}") for i in range(3)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], c2d.ThrottledError), results
        assert hub.refusals("throttled") == 1
        await svc.close()
