"""What c2d's clients exchange: enums, the message to send, feedback records, devices,
connection status, and the conversions from the native module's plain values."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional, Type, TypeVar, Union

from . import _native
from .errors import C2DError, InvalidArgumentError

RetryPolicy = _native.RetryPolicy
#: A retry policy of your own: ``(attempt, error) -> seconds to wait, or None to give up``.
RetryCallable = Callable[[int, C2DError], Optional[float]]
#: What ``retry=`` takes.
Retry = Union["_native.RetryPolicy", RetryCallable]


class Transport(str, enum.Enum):
    """How a device reaches its hub."""

    MQTT = "mqtt"
    """MQTT 3.1.1 over TLS (8883). Complete only: MQTT cannot reject or abandon."""
    MQTT_WS = "mqtt_ws"
    """MQTT over a WebSocket (443)."""
    AMQP = "amqp"
    """AMQP 1.0 over TLS (5671)."""
    AMQP_WS = "amqp_ws"
    """AMQP over a WebSocket (443)."""
    HTTPS = "https"
    """HTTPS polling (443): every settlement; messages arrive when the client polls (at
    connect, then every ``poll_interval``, 25 minutes by default)."""


class ServiceTransport(str, enum.Enum):
    """How a back end reaches its hub."""

    AMQP = "amqp"
    AMQP_WS = "amqp_ws"


class Ack(str, enum.Enum):
    """Which outcomes of a message produce a feedback record."""

    NONE = "none"
    POSITIVE = "positive"
    """Success."""
    NEGATIVE = "negative"
    """Expired, DeliveryCountExceeded, Rejected, Purged."""
    FULL = "full"
    """All of them."""


class FeedbackStatus(str, enum.Enum):
    """A message's outcome."""

    SUCCESS = "Success"
    EXPIRED = "Expired"
    DELIVERY_COUNT_EXCEEDED = "DeliveryCountExceeded"
    REJECTED = "Rejected"
    PURGED = "Purged"


class ConnectionState(str, enum.Enum):
    """Where a client's connection stands."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"


E = TypeVar("E", bound=enum.Enum)


def enum_value(kind: Type[E], value: Any, what: str) -> E:
    """``value`` (a member or its value) as a member of ``kind``."""
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a {kind.__name__}, not {type(value).__name__}")
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(str(m.value) for m in kind)
        raise InvalidArgumentError(f"{what} must be one of {names}, not {value!r}") from None


def utc(seconds: Optional[float]) -> Optional[datetime]:
    """Seconds since the Unix epoch as an aware UTC datetime."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


@dataclass(frozen=True)
class ConnectionStatus:
    """A client's connection status: its state, and why when it is disconnected."""

    state: ConnectionState
    reason: Optional[str] = None

    @classmethod
    def _from_native(cls, status: "tuple[str, Optional[str]]") -> "ConnectionStatus":
        return cls(ConnectionState(status[0]), status[1])


@dataclass
class Message:
    """A C2D message to send.

    ``body`` is bytes (text is sent as UTF-8). ``ttl`` is in seconds (the hub's default, 1 h,
    when ``None``). A message id is generated when ``message_id`` is ``None``. Property names
    and values are text.
    """

    body: Union[bytes, bytearray, memoryview, str]
    ack: Ack = Ack.NONE
    ttl: Optional[float] = None
    message_id: Optional[str] = None
    correlation_id: Optional[str] = None
    content_type: Optional[str] = None
    content_encoding: Optional[str] = None
    properties: Mapping[str, str] = field(default_factory=dict)

    def _to_native(self) -> "_native.OutgoingMessage":
        if isinstance(self.body, str):
            body = self.body.encode("utf-8")
        elif isinstance(self.body, (bytes, bytearray, memoryview)):
            body = bytes(self.body)
        else:
            raise TypeError(f"a message body is bytes or str, not {type(self.body).__name__}")
        for key, value in self.properties.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError("message properties are str names with str values")
        return _native.OutgoingMessage(
            body,
            enum_value(Ack, self.ack, "ack").value,
            None if self.ttl is None else float(self.ttl),
            self.message_id,
            self.correlation_id,
            self.content_type,
            self.content_encoding,
            list(self.properties.items()),
        )


@dataclass(frozen=True)
class FeedbackRecord:
    """A message's outcome, as the hub reported it."""

    original_message_id: str
    device_id: str
    device_generation_id: str
    enqueued_time: datetime
    status: FeedbackStatus
    description: str

    @classmethod
    def _from_native(cls, r: "tuple[str, str, str, float, str, str]") -> "FeedbackRecord":
        when = utc(r[3])
        assert when is not None
        return cls(r[0], r[1], r[2], when, FeedbackStatus(r[4]), r[5])


class FanOutSummary:
    """What a :meth:`ServiceClient.send_many` run did: so far while it runs, in all once it
    has ended."""

    __slots__ = ("sent", "failed", "retried", "throttled", "elapsed", "stopped", "cancelled")

    def __init__(
        self,
        sent: int,
        failed: "dict[str, int]",
        retried: int,
        throttled: int,
        elapsed: float,
        stopped: Optional[BaseException],
        cancelled: bool,
    ) -> None:
        #: Devices whose message the hub took.
        self.sent = sent
        #: Devices it did not take, by error kind (``{"device_not_found": 10}``).
        self.failed = failed
        #: Attempts made again after a throttling or transient error.
        self.retried = retried
        #: Attempts the hub refused as throttled (retried or not).
        self.throttled = throttled
        #: Seconds from the call to the last result (or to now, while it runs).
        self.elapsed = elapsed
        #: The error that ended the run before its last device (``UnauthorizedError``,
        #: ``ClosedError``): the devices after it were not tried.
        self.stopped = stopped
        #: Whether ``stop()`` ended the run early.
        self.cancelled = cancelled

    @property
    def failed_total(self) -> int:
        """Devices whose message the hub did not take."""
        return sum(self.failed.values())

    @classmethod
    def _from_native(cls, t: Any) -> "FanOutSummary":
        sent, failed, retried, throttled, elapsed, stopped, cancelled = t
        return cls(sent, dict(failed), retried, throttled, elapsed, stopped, cancelled)

    def __repr__(self) -> str:
        return (
            f"FanOutSummary(sent={self.sent}, failed={self.failed}, retried={self.retried}, "
            f"throttled={self.throttled}, elapsed={self.elapsed:.3f}, stopped={self.stopped!r}, "
            f"cancelled={self.cancelled})"
        )


@dataclass(frozen=True)
class Device:
    """A device in a hub's registry."""

    device_id: str
    generation_id: str
    etag: str
    status: str
    connection_state: str
    cloud_to_device_message_count: int
    authentication_type: str
    primary_key: Optional[str]
    secondary_key: Optional[str]
    #: The device's connection string with its primary key (None without a SAS key).
    connection_string: Optional[str]
    #: IoT Hub's JSON of the device, as the registry returned it.
    raw: Mapping[str, Any]

    @classmethod
    def _from_native(cls, d: "tuple[str, Optional[str]]") -> "Device":
        raw = json.loads(d[0])
        auth = raw.get("authentication") or {}
        keys = auth.get("symmetricKey") or {}
        return cls(
            device_id=raw["deviceId"],
            generation_id=raw.get("generationId", ""),
            etag=raw.get("etag", ""),
            status=raw.get("status", ""),
            connection_state=raw.get("connectionState", ""),
            cloud_to_device_message_count=int(raw.get("cloudToDeviceMessageCount", 0)),
            authentication_type=auth.get("type", ""),
            primary_key=keys.get("primaryKey"),
            secondary_key=keys.get("secondaryKey"),
            connection_string=d[1],
            raw=raw,
        )


class MessageView:
    """What a received message holds (readable after it is settled too)."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.ReceivedMessage") -> None:
        self._native = native

    @property
    def body(self) -> bytes:
        return self._native.body

    @property
    def message_id(self) -> Optional[str]:
        return self._native.message_id

    @property
    def correlation_id(self) -> Optional[str]:
        return self._native.correlation_id

    @property
    def user_id(self) -> Optional[bytes]:
        return self._native.user_id

    @property
    def to(self) -> Optional[str]:
        return self._native.to

    @property
    def content_type(self) -> Optional[str]:
        return self._native.content_type

    @property
    def content_encoding(self) -> Optional[str]:
        return self._native.content_encoding

    @property
    def ack(self) -> Ack:
        return Ack(self._native.ack)

    @property
    def expiry_time(self) -> Optional[datetime]:
        return utc(self._native.expiry_time)

    @property
    def creation_time(self) -> Optional[datetime]:
        return utc(self._native.creation_time)

    @property
    def enqueued_time(self) -> Optional[datetime]:
        return utc(self._native.enqueued_time)

    @property
    def delivery_count(self) -> int:
        """How many times the message was delivered before this delivery."""
        return self._native.delivery_count

    @property
    def sequence_number(self) -> Optional[int]:
        return self._native.sequence_number

    @property
    def lock_token(self) -> Optional[str]:
        return self._native.lock_token

    @property
    def properties(self) -> "dict[str, str]":
        """The application properties."""
        return self._native.properties

    @property
    def settled(self) -> bool:
        """Whether this delivery is over: completed, rejected, abandoned, or given up by a
        settle that failed (an MQTT reject, say; the hub then delivers it again once its lock
        ends)."""
        return self._native.settled

    def __repr__(self) -> str:
        return f"<{type(self).__name__} message_id={self.message_id!r} delivery_count={self.delivery_count} body={self.body[:32]!r}>"


def client_options(transport_kind: Type[E], arguments: "dict[str, Any]") -> "_native.ClientOptions":
    """The native options of a client's ``connect`` call, made of its arguments (the
    ``locals()`` it starts with): the transport checked, everything else as given."""
    options = {k: v for k, v in arguments.items() if k not in ("cls", "connection_string")}
    options["transport"] = enum_value(transport_kind, options["transport"], "transport").value
    return _native.ClientOptions(arguments["connection_string"], **options)
