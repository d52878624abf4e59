"""The blocking clients. Every call that waits releases the GIL, and Ctrl-C interrupts it
within about 100 ms.

Written from ``aio.py`` by ``scripts/python-sync.py``: do not edit; edit ``aio.py`` and run
the script."""

from __future__ import annotations

import collections
import os
from types import TracebackType
from typing import Iterator, Iterable, Optional, Type, TypeVar, Union

from . import _native
from ._model import (
    Ack,
    ConnectionState,
    ConnectionStatus,
    Device,
    FanOutSummary,
    FeedbackRecord,
    FeedbackStatus,
    Message,
    MessageView,
    Retry,
    RetryPolicy,
    ServiceTransport,
    Transport,
    client_options,
)
from .errors import ClosedError

PathLike = Union[str, "os.PathLike[str]"]


class ReceivedMessage(MessageView):
    """A message a device received; settle it once with :meth:`complete`, :meth:`reject`
    or :meth:`abandon` (a second settle raises :class:`~c2d.AlreadySettledError`)."""

    __slots__ = ()

    def complete(self) -> None:
        """Done: the message leaves the queue (MQTT: its PUBACK is sent now). Over MQTT and
        AMQP this returns once the frame is queued, which the hub does not answer (a
        connection lost before it is written means the hub delivers the message again);
        over HTTPS, with the hub's answer."""
        if not self._native.complete_now():
            self._native.complete()

    def reject(self) -> None:
        """Dead-letter it (AMQP and HTTPS; over MQTT :class:`~c2d.UnsupportedError`, nothing
        sent and the message still yours to complete)."""
        if not self._native.reject_now():
            self._native.reject()

    def abandon(self) -> None:
        """Put it back for another delivery (AMQP and HTTPS; over MQTT
        :class:`~c2d.UnsupportedError`, as for :meth:`reject`)."""
        if not self._native.abandon_now():
            self._native.abandon()


def _status_changes(changes: "_native.StatusChanges") -> Iterator[ConnectionStatus]:
    while True:
        status = changes.next()
        if status is None:
            return
        yield ConnectionStatus._from_native(status)


# the native classes under names that class bodies, whose `_native` attribute hides the
# module, can still use
_NativeDeviceClient = _native.DeviceClient
_NativeServiceClient = _native.ServiceClient
C = TypeVar("C", bound="_Connection")

# a receive that finds its message at once lets the event loop run after this many in a row
_AT_ONCE = 16


class _Connection:
    """What both clients have: a connection status, its changes, and use as a context
    manager (which closes the client)."""

    __slots__ = ()
    _native: Union[_NativeDeviceClient, _NativeServiceClient]

    def close(self) -> None:
        raise NotImplementedError

    @property
    def status(self) -> ConnectionStatus:
        """The connection's status now."""
        return ConnectionStatus._from_native(self._native.status)

    def status_changes(self) -> Iterator[ConnectionStatus]:
        """Every change of status from now on."""
        return _status_changes(self._native.status_changes())

    def __enter__(self: C) -> C:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class DeviceClient(_Connection):
    """A device's connection to its hub: receive C2D messages and settle each one.

    Make one with :meth:`connect`; use it as a context manager, or :meth:`close` it.
    """

    __slots__ = ("_native", "_at_once")
    _native: _NativeDeviceClient

    def __init__(self, native: _NativeDeviceClient) -> None:
        self._native = native
        self._at_once = 0

    @classmethod
    def connect(
        cls,
        connection_string: str,
        *,
        transport: Union[Transport, str] = Transport.MQTT,
        trusted_ca: Union[str, bytes, None] = None,
        trusted_ca_file: Optional[PathLike] = None,
        port: Optional[int] = None,
        mqtt_port: Optional[int] = None,
        amqp_port: Optional[int] = None,
        https_port: Optional[int] = None,
        retry: Optional[Retry] = None,
        timeout: Optional[float] = None,
        sas_token_ttl: Optional[float] = None,
        in_flight: Optional[int] = None,
        poll_interval: Optional[float] = None,
        cert: Union[str, bytes, None] = None,
        cert_file: Optional[PathLike] = None,
        key: Union[str, bytes, None] = None,
        key_file: Optional[PathLike] = None,
        proxy: Optional[str] = None,
        suppress_duplicates: bool = False,
        duplicates_file: Optional[PathLike] = None,
    ) -> "DeviceClient":
        """Connects, retrying as ``retry`` says (exponential back-off by default).

        ``port`` is the chosen transport's port; ``mqtt_port``, ``amqp_port`` and
        ``https_port`` (the WebSocket transports' and HTTPS's) describe a hub not on IoT Hub's ports
        whatever the transport. ``timeout`` bounds one attempt or settlement (30 s),
        ``sas_token_ttl`` the life of each token the client makes (1 h, renewed at 80 %),
        ``in_flight`` the messages received and not yet settled (16), ``poll_interval`` the
        seconds an HTTPS client waits between polls once the queue is empty (25 minutes, IoT
        Hub's guidance; each poll drains the queue; poll more often only in development).
        ``cert`` and ``key`` (PEM text or bytes; or ``cert_file`` and ``key_file``) are the
        device's X.509 certificate and private key, for a connection string with
        ``x509=true``. ``proxy`` (``http://[user:password@]host:port``) is an HTTP proxy to
        reach the hub through with ``CONNECT``; it carries ``MQTT_WS``, ``AMQP_WS`` and
        ``HTTPS`` (plain MQTT or AMQP with a proxy is an ``InvalidArgumentError``). The
        environment is not read: pass ``proxy=os.environ.get("HTTPS_PROXY")`` to use its proxy.

        ``suppress_duplicates=True`` hands each message over once: the ids of the messages
        the application completed or rejected are remembered (the last 10 000, for 48 hours),
        and one that comes again (its acknowledgement was lost, its connection dropped) is
        settled the same way without being handed over, counted in
        :attr:`duplicates_suppressed`. ``duplicates_file`` (which implies it) keeps the ids in
        a file too, written before each settlement is sent, so a process killed after
        handling a message and before its acknowledgement reached the hub does not see it
        again after a restart. Messages without a message id are always handed over.
        """
        # first, while the arguments are all the locals there are
        options = client_options(Transport, locals())
        native = options.connect_device()
        return cls(native)

    def receive(self, timeout: Optional[float] = None) -> Optional[ReceivedMessage]:
        """The next message, waiting at most ``timeout`` seconds (``None``: as long as it
        takes); ``None`` when the time is up. Raises :class:`~c2d.ClosedError` once the
        client is closed."""
        self._at_once += 1
        # a message the client holds already: no thread hop, nothing to cancel
        native = self._native.receive_now()
        if native is None:
            self._at_once = 0
            native = self._native.receive(timeout)
            if native is None:
                return None
            # nothing between the result and the claim: a task cancelled before this point
            # leaves the message unclaimed, and the engine gives it to the next receive
            native.claim()
        return ReceivedMessage(native)

    def messages(self) -> Iterator[ReceivedMessage]:
        """Every message, as it arrives; ends when the client is closed."""
        while True:
            try:
                message = self.receive()
            except ClosedError:
                return
            if message is not None:
                yield message

    def close(self) -> None:
        """Disconnects, after the settlements already made reach the hub; messages not
        settled go back to the queue. Closing twice does nothing."""
        self._native.close()

    @property
    def transport(self) -> Transport:
        return Transport(self._native.transport)

    @property
    def duplicates_suppressed(self) -> int:
        """How many duplicates were settled without being handed over (with
        ``suppress_duplicates``)."""
        return self._native.duplicates_suppressed



class SentMessage:
    """A message the hub accepted."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.SentMessage") -> None:
        self._native = native

    @property
    def message_id(self) -> str:
        """The message's id (generated when the message had none)."""
        return self._native.message_id

    def outcome(self, timeout: Optional[float] = None) -> FeedbackRecord:
        """This message's own feedback record, waiting at most ``timeout`` seconds
        (``None``: as long as it takes; :class:`~c2d.OperationTimeoutError` when the time
        is up). The message's ``ack`` decides which outcomes produce a record.

        The records come from the hub's one feedback endpoint, which IoT Hub gives to one
        reader at a time: two service clients open on one hub take records from each other,
        and a record can reach the client that did not send its message. Keep one client per
        hub, or close one before connecting the next.

        The hub batches the records: one made after a quiet feedback interval (IoT Hub: about
        15 s) goes out at once, the next ones once that interval has passed since the batch
        before. A :class:`c2d.testing.LocalHub` with ``manual_clock=True`` counts that
        interval on its clock: a second outcome comes only after
        :meth:`~c2d.testing.LocalHub.advance_clock` moves it past the interval (or start the
        hub with a short ``feedback_interval``)."""
        return FeedbackRecord._from_native(self._native.outcome(timeout))


class SendResult:
    """One device's result of a :meth:`ServiceClient.send_many`: ``sent`` when the hub took
    the message, else ``error``, the exception of its kind (:class:`~c2d.DeviceNotFoundError`,
    :class:`~c2d.QueueFullError`, …)."""

    __slots__ = ("device_id", "sent", "error")

    def __init__(
        self,
        device_id: str,
        sent: "Optional[_native.SentMessage]",
        error: Optional[BaseException],
    ) -> None:
        #: The device.
        self.device_id = device_id
        #: The message sent to it (its id, its outcome), or ``None``.
        self.sent = None if sent is None else SentMessage(sent)
        #: Why it was not sent, or ``None``.
        self.error = error

    def __repr__(self) -> str:
        what = f"sent={self.sent.message_id!r}" if self.sent else f"error={self.error!r}"
        return f"SendResult({self.device_id!r}, {what})"


class SendMany:
    """A :meth:`ServiceClient.send_many` run: iterate over it for each device's
    :class:`SendResult`, in the order they complete. Sends start only while it is iterated;
    :meth:`stop` starts no new one (those in flight are still reported, then the iteration
    ends); :attr:`summary` says what it did."""

    __slots__ = ("_native", "_ready", "_done")

    def __init__(self, native: "_native.SendMany") -> None:
        self._native = native
        self._ready: "collections.deque[tuple[str, Optional[_native.SentMessage], Optional[BaseException]]]" = (
            collections.deque()
        )
        self._done = False

    def __iter__(self) -> "SendMany":
        return self

    def __next__(self) -> SendResult:
        while not self._ready:
            if self._done:
                raise StopIteration
            # cancelled here, the run takes nothing: sends start only while it is iterated
            items, self._done = self._native.next_batch(256)
            self._ready.extend(items)
        return SendResult(*self._ready.popleft())

    def stop(self) -> None:
        """Starts no new send; those in flight are still reported, then the iteration ends
        and :attr:`summary` says ``cancelled``."""
        self._native.stop()

    @property
    def summary(self) -> FanOutSummary:
        """What the run did so far; final once the iteration has ended."""
        return FanOutSummary._from_native(self._native.summary())


class Feedback:
    """Every feedback record from the moment it was made; iterate over it, or ask for the
    :meth:`next` one with a timeout."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.FeedbackReceiver") -> None:
        self._native = native

    def next(self, timeout: Optional[float] = None) -> Optional[FeedbackRecord]:
        """The next record, or ``None`` when ``timeout`` seconds pass. Raises
        :class:`~c2d.ClosedError` once the client is closed."""
        record, is_open = self._native.next(timeout)
        if not is_open:
            raise ClosedError("the service client was closed", "closed")
        return None if record is None else FeedbackRecord._from_native(record)

    def __iter__(self) -> Iterator[FeedbackRecord]:
        return self._records()

    def _records(self) -> Iterator[FeedbackRecord]:
        while True:
            record, is_open = self._native.next(None)
            if not is_open:
                return
            if record is not None:
                yield FeedbackRecord._from_native(record)


class Registry:
    """The devices of a hub (IoT Hub's REST registry)."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.Registry") -> None:
        self._native = native

    def create_device(self, device_id: str) -> Device:
        """Registers a device; the hub generates its keys."""
        return Device._from_native(self._native.create_device(device_id))

    def get_device(self, device_id: str) -> Device:
        return Device._from_native(self._native.get_device(device_id))

    def list_devices(self, top: int = 1000) -> "list[Device]":
        return [Device._from_native(d) for d in self._native.list_devices(top)]

    def delete_device(self, device_id: str) -> None:
        """Deletes a device and its queue."""
        self._native.delete_device(device_id)


class ServiceClient(_Connection):
    """A back end's connection to its hub: send C2D messages, follow their outcomes and
    every feedback record, purge queues, manage devices."""

    __slots__ = ("_native", "registry")
    _native: _NativeServiceClient

    def __init__(self, native: _NativeServiceClient) -> None:
        self._native = native
        #: The hub's registry.
        self.registry = Registry(native.registry)

    @classmethod
    def connect(
        cls,
        connection_string: str,
        *,
        transport: Union[ServiceTransport, str] = ServiceTransport.AMQP,
        trusted_ca: Union[str, bytes, None] = None,
        trusted_ca_file: Optional[PathLike] = None,
        port: Optional[int] = None,
        amqp_port: Optional[int] = None,
        https_port: Optional[int] = None,
        retry: Optional[Retry] = None,
        timeout: Optional[float] = None,
        sas_token_ttl: Optional[float] = None,
        proxy: Optional[str] = None,
    ) -> "ServiceClient":
        """Connects with a policy's connection string, retrying as ``retry`` says.

        ``port`` is the chosen transport's port; ``amqp_port`` and ``https_port`` (REST and
        AMQP over WebSockets) describe a hub not on IoT Hub's ports. ``proxy`` is an HTTP
        proxy (``http://[user:password@]host:port``) for REST and ``AMQP_WS``, which a proxy
        needs.
        """
        # first, while the arguments are all the locals there are
        options = client_options(ServiceTransport, locals())
        native = options.connect_service()
        return cls(native)

    def send(self, device_id: str, message: Union[Message, bytes, str]) -> SentMessage:
        """Sends a message to a device; returns once the hub has accepted it."""
        if not isinstance(message, Message):
            message = Message(message)
        return SentMessage(self._native.send(device_id, message._to_native()))

    def send_many(
        self,
        devices: Iterable[str],
        message: Union[Message, bytes, str],
        *,
        rate: Optional[float] = None,
        tier: Optional[str] = None,
        units: int = 1,
        in_flight: int = 64,
        retry: Optional[Retry] = None,
    ) -> SendMany:
        """Sends ``message`` to every device of ``devices`` (any iterable of ids, taken as
        sends start, never all at once), each with its own message id: the message's id and
        ``:`` and the device id, or a new UUID each when the message has none. Iterate over
        the result for each device's :class:`SendResult`.

        At most ``in_flight`` sends wait for the hub at once, started at most ``rate`` a
        second, or at the C2D send throttle of an IoT hub of ``tier`` (``"S1"``: 100 a minute
        a unit; ``"S3"``: 5 000) with ``units``. Throttling and transient errors are retried
        per ``retry`` (the client's policy by default), a throttling also slowing the whole
        run; an unknown device, a full queue or a message too large fail that device at
        once; refused credentials or a closed client end the run (``summary.stopped``).
        """
        if not isinstance(message, Message):
            message = Message(message)
        return SendMany(
            self._native.send_many(
                devices,
                message._to_native(),
                in_flight=in_flight,
                rate=rate,
                tier=tier,
                units=units,
                retry=retry,
            )
        )

    def feedback(self) -> Feedback:
        """Every feedback record from now on."""
        return Feedback(self._native.feedback())

    def purge(self, device_id: str) -> int:
        """Removes every message queued for a device; returns how many there were."""
        result: int = self._native.purge(device_id)
        return result

    def close(self) -> None:
        """Closes the connection; calls still waiting raise :class:`~c2d.ClosedError`."""
        self._native.close()


__all__ = [
    "Ack",
    "ConnectionState",
    "ConnectionStatus",
    "Device",
    "DeviceClient",
    "FanOutSummary",
    "Feedback",
    "FeedbackRecord",
    "FeedbackStatus",
    "Message",
    "ReceivedMessage",
    "Registry",
    "RetryPolicy",
    "SendMany",
    "SendResult",
    "SentMessage",
    "ServiceClient",
    "ServiceTransport",
    "Transport",
]
