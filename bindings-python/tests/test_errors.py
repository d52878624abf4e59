"""Every error kind of the engine reaches Python as its own class, with the standard base
the kind resembles, and misuse is refused clearly."""

from __future__ import annotations

import pytest

import c2d
from c2d import _native
from c2d.testing import LocalHub

from conftest import WAIT

# kind → (class, the standard exception it also is)
EXPECTED = {
    "invalid_argument": (c2d.InvalidArgumentError, ValueError),
    "unauthorized": (c2d.UnauthorizedError, PermissionError),
    "device_not_found": (c2d.DeviceNotFoundError, LookupError),
    "queue_full": (c2d.QueueFullError, None),
    "message_too_large": (c2d.MessageTooLargeError, ValueError),
    "throttled": (c2d.ThrottledError, None),
    "unavailable": (c2d.UnavailableError, ConnectionError),
    "timeout": (c2d.OperationTimeoutError, TimeoutError),
    "message_lock_lost": (c2d.MessageLockLostError, None),
    "already_settled": (c2d.AlreadySettledError, None),
    "unsupported": (c2d.UnsupportedError, NotImplementedError),
    "closed": (c2d.ClosedError, None),
    "protocol": (c2d.ProtocolError, None),
    "internal": (c2d.InternalError, None),
    "quota_exceeded": (c2d.QuotaExceededError, None),
}


def test_every_engine_error_kind_has_its_own_class() -> None:
    kinds = _native.error_kinds()
    assert kinds == list(EXPECTED), "the engine's kinds and this table differ"
    for kind in kinds:
        cls, base = EXPECTED[kind]
        with pytest.raises(cls) as caught:
            _native.raise_error(kind, f"a {kind} error")
        err = caught.value
        assert type(err) is cls, kind
        assert isinstance(err, c2d.C2DError)
        assert base is None or isinstance(err, base), kind
        assert err.kind == kind == cls.kind
        assert str(err) == f"a {kind} error"
    assert len({cls for cls, _ in EXPECTED.values()}) == len(EXPECTED)


def test_misuse_is_refused_clearly(hub: LocalHub) -> None:
    cs = hub.create_device("dev1")
    # wrong types and values
    with pytest.raises(TypeError):
        c2d.DeviceClient.connect(cs, transport=5)  # type: ignore[arg-type]
    with pytest.raises(c2d.InvalidArgumentError):
        c2d.DeviceClient.connect(cs, transport="carrier-pigeon")
    with pytest.raises(c2d.InvalidArgumentError):
        c2d.DeviceClient.connect("HostName=;nonsense")
    with pytest.raises(TypeError):
        c2d.DeviceClient.connect(cs, trusted_ca=12, **{k: v for k, v in hub.device_options().items() if k != "trusted_ca"})  # type: ignore[arg-type]
    with pytest.raises(c2d.InvalidArgumentError):
        c2d.DeviceClient.connect(cs, timeout=-1.0, **hub.device_options())
    with pytest.raises(TypeError):
        c2d.DeviceClient.connect(cs, retry="often", **hub.device_options())  # type: ignore[arg-type]
    with c2d.ServiceClient.connect(hub.service_connection_string, **hub.service_options()) as svc:
        with pytest.raises(c2d.InvalidArgumentError):
            svc.send("dev1", c2d.Message(b"x", ttl=-5.0))
        with pytest.raises(c2d.InvalidArgumentError):
            svc.send("dev1", c2d.Message(b"x", ack="sometimes"))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            svc.send("dev1", c2d.Message(b"x", properties={"n": 1}))  # type: ignore[dict-item]
        with pytest.raises(TypeError):
            svc.send("dev1", 42)  # type: ignore[arg-type]
        # the service policy has no RegistryWrite, as on IoT Hub
        with pytest.raises(c2d.UnauthorizedError):
            svc.registry.create_device("dev2")
        # settle twice
        svc.send("dev1", b"once")
        with c2d.DeviceClient.connect(cs, transport=c2d.Transport.AMQP, **hub.device_options()) as dev:
            m = dev.receive(timeout=WAIT)
            assert m is not None
            m.complete()
            with pytest.raises(c2d.AlreadySettledError):
                m.complete()
            with pytest.raises(c2d.AlreadySettledError):
                m.reject()
        # use after close
        with pytest.raises(c2d.ClosedError):
            dev.receive(timeout=0.1)
        dev.close()  # twice is fine
    with pytest.raises(c2d.ClosedError):
        svc.purge("dev1")
    hub.stop()
    with pytest.raises(c2d.ClosedError):
        hub.create_device("late")
    with pytest.raises(c2d.InvalidArgumentError):
        LocalHub(durability="sometimes")
    with LocalHub() as real_time:
        with pytest.raises(c2d.InvalidArgumentError):
            real_time.advance_clock(1.0)
