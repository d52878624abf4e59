"""How the binding waits: timeouts, Ctrl-C, threads, fork, the retry callable, logging,
and a forgotten client."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import c2d
from c2d.testing import LocalHub

from conftest import WAIT


def test_receive_timeout_returns_none_and_other_threads_run(hub: LocalHub) -> None:
    cs = hub.create_device("dev1")
    with c2d.DeviceClient.connect(cs, **hub.device_options()) as dev:
        ticks = []
        stop = threading.Event()

        def tick() -> None:  # runs only if receive() released the GIL
            while not stop.is_set():
                ticks.append(1)
                time.sleep(0.01)

        t = threading.Thread(target=tick)
        t.start()
        started = time.monotonic()
        assert dev.receive(timeout=0.5) is None
        waited = time.monotonic() - started
        stop.set()
        t.join()
        print(f"receive(timeout=0.5) returned None after {waited:.3f} s; {len(ticks)} ticks meanwhile")
        assert waited >= 0.5
        assert len(ticks) > 10


def test_a_message_arrives_while_another_thread_waits(hub: LocalHub) -> None:
    cs = hub.create_device("dev1")
    with c2d.DeviceClient.connect(cs, transport=c2d.Transport.AMQP, **hub.device_options()) as dev:
        got: "list[bytes]" = []
        t = threading.Thread(target=lambda: got.extend(m.body for m in [dev.receive(timeout=WAIT)] if m))
        t.start()
        with c2d.ServiceClient.connect(hub.service_connection_string, **hub.service_options()) as svc:
            svc.send("dev1", b"to the waiting thread")
        t.join()
        assert got == [b"to the waiting thread"]


def run_python(code: str, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


def test_ctrl_c_interrupts_a_blocking_receive() -> None:
    out = run_python("""
        import os, signal, threading, time, c2d
        from c2d.testing import LocalHub
        with LocalHub() as hub:
            dev = c2d.DeviceClient.connect(hub.create_device("d"), **hub.device_options())
            sent_at = []
            def interrupt():
                time.sleep(0.5)
                sent_at.append(time.monotonic())
                os.kill(os.getpid(), signal.SIGINT)
            threading.Thread(target=interrupt).start()
            try:
                dev.receive()
                print("NOT INTERRUPTED")
            except KeyboardInterrupt:
                print("INTERRUPTED after %.0f ms" % ((time.monotonic() - sent_at[0]) * 1000))
            dev.close()
    """)
    print(out.stdout, out.stderr)
    assert "INTERRUPTED after" in out.stdout, out.stderr


def test_a_forked_child_gets_a_clear_error() -> None:
    out = run_python("""
        import os, c2d
        from c2d.testing import LocalHub
        with LocalHub() as hub:
            dev = c2d.DeviceClient.connect(hub.create_device("d"), **hub.device_options())
            pid = os.fork()
            if pid == 0:
                try:
                    dev.receive(timeout=1)
                    os._exit(3)
                except c2d.InternalError as e:
                    os._exit(0 if "fork" in str(e) else 4)
            _, status = os.waitpid(pid, 0)
            print("CHILD", os.waitstatus_to_exitcode(status))
            dev.close()
    """)
    assert "CHILD 0" in out.stdout, out.stdout + out.stderr


def test_the_retry_callable_decides_each_retry() -> None:
    calls: "list[tuple[int, str]]" = []

    def decide(attempt: int, error: c2d.C2DError) -> "float | None":
        calls.append((attempt, type(error).__name__))
        return 0.01 if attempt < 3 else None

    # a port where nothing listens: connecting is refused, a transient error
    with LocalHub() as hub:
        cs = hub.create_device("d")
        port = hub.amqp_port
    with pytest.raises(c2d.UnavailableError):
        c2d.DeviceClient.connect(cs, transport=c2d.Transport.AMQP, port=port, trusted_ca=hub.ca_pem, retry=decide)
    assert calls == [(1, "UnavailableError"), (2, "UnavailableError"), (3, "UnavailableError")]

    # the engine's own policies end too, each after its last retry
    with pytest.raises(c2d.UnavailableError):
        c2d.DeviceClient.connect(cs, transport=c2d.Transport.AMQP, port=port, trusted_ca=hub.ca_pem,
                                 retry=c2d.RetryPolicy.fixed(0.01, max_retries=2))
    with pytest.raises(c2d.UnavailableError):
        c2d.DeviceClient.connect(cs, transport=c2d.Transport.AMQP, port=port, trusted_ca=hub.ca_pem,
                                 retry=c2d.RetryPolicy.none())
    assert "exponential_backoff" in repr(c2d.RetryPolicy.exponential_backoff())


def test_engine_records_reach_logging(hub: LocalHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c2d.reset_log_cache()
    cs = hub.create_device("dev1")
    bad = cs.replace("SharedAccessKey=", "SharedAccessKey=AAAA")
    with pytest.raises(c2d.UnauthorizedError):
        c2d.DeviceClient.connect(bad, **hub.device_options())
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not any(r.name.startswith("c2d_hub") for r in caplog.records):
        time.sleep(0.05)
    names = {r.name for r in caplog.records}
    assert any(n.startswith("c2d_hub") for n in names), names
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused, [r.getMessage() for r in caplog.records]


def test_a_forgotten_client_is_closed(hub: LocalHub) -> None:
    cs = hub.create_device("dev1")
    dev = c2d.DeviceClient.connect(cs, transport=c2d.Transport.AMQP, **hub.device_options())
    changes = dev._native.status_changes()
    del dev
    gc.collect()
    assert changes.next(WAIT) == ("disconnected", "closed")


@pytest.mark.asyncio
async def test_cancelling_an_awaited_receive_leaves_the_client_usable(hub: LocalHub) -> None:
    import asyncio

    import c2d.aio

    cs = hub.create_device("dev1")
    async with await c2d.aio.DeviceClient.connect(cs, transport=c2d.Transport.AMQP, **hub.device_options()) as dev:
        waiting = asyncio.ensure_future(dev.receive())
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(dev.receive(), 0.2)
        # the cancelled waits took nothing: the next message reaches the next receive
        async with await c2d.aio.ServiceClient.connect(hub.service_connection_string, **hub.service_options()) as svc:
            await svc.send("dev1", b"after the cancellations")
        m = await dev.receive(timeout=WAIT)
        assert m is not None and m.body == b"after the cancellations"
        await m.complete()


def test_a_plain_import_reaches_the_asyncio_clients_and_the_test_hub() -> None:
    # a fresh interpreter: this one imported c2d.aio and c2d.testing already
    code = "import c2d; print(c2d.aio.DeviceClient.__name__, c2d.testing.LocalHub.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["DeviceClient", "LocalHub"]
