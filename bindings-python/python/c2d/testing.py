"""A local hub for your tests: ``with LocalHub() as hub: …`` starts a real hub in this
process, on free ports, with its data in a temporary directory."""

from __future__ import annotations

import json
import os
from types import TracebackType
from typing import Any, NamedTuple, Optional, Type, Union

from . import _native


class X509Identity(NamedTuple):
    """An X.509 device made by :meth:`LocalHub.create_x509_device`."""

    connection_string: str
    """``HostName=…;DeviceId=…;x509=true``"""
    cert_pem: str
    """The device's certificate, PEM."""
    key_pem: str
    """Its private key, PEM."""


def _millis(seconds: float, name: str) -> int:
    if not seconds >= 0:
        raise ValueError(f"{name} must be a number of seconds, at least 0")
    return round(seconds * 1000)


class Faults:
    """Faults on demand in a running :class:`LocalHub` (``hub.faults``): the hub misbehaves
    the way IoT Hub, or the network in front of it, can — for real, over the wire, so any
    client (c2d's or an official SDK) sees it. Each is logged by the hub, counted in its
    ``/metrics`` (``c2d_hub_faults_total``) and shown on its live page while it lasts; the
    command line does the same to a running ``c2d hub`` (``c2d hub fault …``)."""

    __slots__ = ("_native",)

    def __init__(self, native: Any) -> None:
        self._native = native

    def _apply(self, fault: "dict[str, Any]") -> int:
        return int(self._native.apply_fault(json.dumps(fault)))

    def drop_connections(self, device_id: str, *, polite: bool = False) -> int:
        """Ends the device's connections now, the way a network drop looks (no DISCONNECT
        or close frame), or with the protocol's close when ``polite``; the messages they held
        locked go back to the queue, and the device reconnects by itself. Returns how many
        connections ended (HTTPS devices hold none)."""
        return self._apply({"fault": "drop", "device": device_id, "polite": polite})

    def drop_transport(self, transport: str, *, polite: bool = False) -> int:
        """Ends every device connection over ``transport`` (``"mqtt"``, ``"mqtt_ws"``,
        ``"amqp"``, ``"amqp_ws"``) now; returns how many."""
        return self._apply({"fault": "drop", "transport": transport, "polite": polite})

    def lose_acks(self, device_id: str, count: int = 1) -> None:
        """Loses the device's next ``count`` acknowledgements (complete, reject, abandon),
        as a PUBACK lost on the way is: the message stays locked until its lock runs out (or
        :meth:`expire_locks`), then comes again."""
        self._apply({"fault": "lose-acks", "device": device_id, "count": count})

    def delay_deliveries(self, device_id: str, seconds: float) -> None:
        """Holds every delivery to the device for ``seconds`` before it is sent (its lock
        runs meanwhile), until :meth:`clear` (or a delay of 0)."""
        self._apply(
            {"fault": "delay", "device": device_id, "delay_ms": _millis(seconds, "seconds")}
        )

    def stall_store(self, seconds: float) -> None:
        """Holds the hub's store commits for ``seconds``, as a slow disk would: sends wait
        for their answer (each answered once durable, or once its device has completed it),
        nothing is lost."""
        self._apply({"fault": "stall-store", "for_ms": _millis(seconds, "seconds")})

    def refuse_sends(
        self, error: str, *, count: Optional[int] = None, seconds: Optional[float] = None
    ) -> None:
        """Refuses C2D sends with one of IoT Hub's errors — ``"throttled"`` (429001,
        :class:`~c2d.ThrottledError`), ``"busy"`` (503001, :class:`~c2d.UnavailableError`) or
        ``"quota"`` (403002, :class:`~c2d.QuotaExceededError`) — the next ``count`` of them, or all for ``seconds``."""
        fault: "dict[str, Any]" = {"fault": "refuse-sends", "error": error}
        if count is not None:
            fault["count"] = count
        if seconds is not None:
            fault["for_ms"] = _millis(seconds, "seconds")
        self._apply(fault)

    def expire_locks(self) -> int:
        """Ends every message lock now, as if each had run out: the messages come again.
        Returns how many."""
        return self._apply({"fault": "expire-locks"})

    def clear(self) -> None:
        """Ends every fault in force."""
        self._native.clear_faults()

    def active(self) -> "list[dict[str, Any]]":
        """The faults in force, with what is left of each (``{"fault": "lose-acks",
        "device": "dev1", "count": 1}``, …)."""
        active: "list[dict[str, Any]]" = json.loads(self._native.active_faults())
        return active

    @property
    def acks_lost(self) -> int:
        """Acknowledgements lost to :meth:`lose_acks` since the hub started."""
        return int(self._native.acks_lost())


class LocalHub:
    """A running hub with IoT Hub's rules unless told otherwise (times in seconds).

    ``manual_clock=True`` makes the hub's time move only by :meth:`advance_clock`, so tests
    reach TTL and lock expiry without sleeping. Feedback batching follows that clock too: a
    feedback record made within ``feedback_interval`` (15 s by default) of the previous batch
    goes out, and an awaited ``outcome()`` returns, only once the clock is advanced past it. The hub stops at the end of a ``with`` block,
    on :meth:`stop`, or when collected; a temporary data directory is removed then.

    ``tier="S1"`` (``F1``, ``S1``, ``S2``, ``S3``) and ``units`` make the hub throttle as IoT
    Hub does: C2D sends, HTTPS receives and registry operations at the tier's rates, a request
    over the rate held up to ``throttle_backlog`` seconds (1 by default), then refused with
    IoT Hub's throttling error (:class:`~c2d.ThrottledError` to c2d's clients).
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        *,
        data_dir: Union[str, "os.PathLike[str]", None] = None,
        manual_clock: bool = False,
        max_queue_depth: Optional[int] = None,
        max_message_size: Optional[int] = None,
        default_ttl: Optional[float] = None,
        lock_timeout: Optional[float] = None,
        max_delivery_count: Optional[int] = None,
        feedback_interval: Optional[float] = None,
        durability: str = "fsync",
        tier: Optional[str] = None,
        units: int = 1,
        throttle_backlog: Optional[float] = None,
    ) -> None:
        self._native = _native.LocalHub(
            data_dir=None if data_dir is None else str(data_dir),
            manual_clock=manual_clock,
            max_queue_depth=max_queue_depth,
            max_message_size=max_message_size,
            default_ttl=default_ttl,
            lock_timeout=lock_timeout,
            max_delivery_count=max_delivery_count,
            feedback_interval=feedback_interval,
            durability=durability,
            tier=tier,
            units=units,
            throttle_backlog=throttle_backlog,
        )

    @property
    def host_name(self) -> str:
        return self._native.host_name

    @property
    def mqtt_port(self) -> int:
        return self._native.mqtt_port

    @property
    def amqp_port(self) -> int:
        return self._native.amqp_port

    @property
    def https_port(self) -> int:
        return self._native.https_port

    @property
    def ca_pem(self) -> str:
        """The PEM of the hub's development CA, which clients must trust."""
        return self._native.ca_pem

    @property
    def ca_file(self) -> str:
        return str(self._native.ca_file)

    @property
    def data_dir(self) -> str:
        return str(self._native.data_dir)

    @property
    def service_connection_string(self) -> str:
        """The ``service`` policy (send, feedback, purge)."""
        return self._native.service_connection_string

    @property
    def owner_connection_string(self) -> str:
        """The ``iothubowner`` policy (everything, the registry too)."""
        return self._native.owner_connection_string

    @property
    def ui_url(self) -> str:
        """The address of the hub's live page (devices, queues, feedback) with the token that
        opens it, new at every start; the token also reads ``/metrics`` as
        ``Authorization: Bearer <token>``."""
        return self._native.ui_url

    def service_options(self) -> "dict[str, Any]":
        """The keyword arguments that point a ``ServiceClient.connect`` at this hub."""
        return {"trusted_ca": self.ca_pem, "amqp_port": self.amqp_port, "https_port": self.https_port}

    def device_options(self) -> "dict[str, Any]":
        """The keyword arguments that point a ``DeviceClient.connect`` at this hub, whatever
        the transport."""
        return {
            "trusted_ca": self.ca_pem,
            "mqtt_port": self.mqtt_port,
            "amqp_port": self.amqp_port,
            "https_port": self.https_port,
        }

    def create_device(self, device_id: str) -> str:
        """Registers a device; returns its connection string."""
        return self._native.create_device(device_id)

    def create_x509_device(self, device_id: str) -> "X509Identity":
        """Registers an X.509 device (``selfSigned``) with a new self-signed certificate,
        valid for a year: connect with ``DeviceClient.connect(identity.connection_string,
        cert=identity.cert_pem, key=identity.key_pem, ...)``."""
        return X509Identity(*self._native.create_x509_device(device_id))

    def queue_depth(self, device_id: str) -> int:
        """How many messages are queued for a device (locked ones included)."""
        return self._native.queue_depth(device_id)

    def set_throttling(
        self, tier: Optional[str], units: int = 1, backlog: Optional[float] = None
    ) -> None:
        """Throttles as an IoT hub of ``tier`` with ``units`` from now on (``None``: no
        longer)."""
        self._native.set_throttling(tier, units, backlog)

    def refusals(self, reason: str) -> int:
        """Requests the hub refused for ``reason`` since it started (``"throttled"``, …), as
        ``/metrics`` counts them."""
        return self._native.refusals(reason)

    def advance_clock(self, seconds: float) -> None:
        """Moves a ``manual_clock`` hub's time forward."""
        self._native.advance_clock(seconds)

    @property
    def faults(self) -> Faults:
        """Faults on demand: drop connections, lose acknowledgements, delay deliveries,
        stall the store, refuse sends, expire locks (:class:`Faults`)."""
        return Faults(self._native)

    def stop(self) -> None:
        """Stops the hub; its clients see their connections end. Stopping twice does nothing."""
        self._native.stop()

    def __enter__(self) -> "LocalHub":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()


__all__ = ["Faults", "LocalHub", "X509Identity"]
