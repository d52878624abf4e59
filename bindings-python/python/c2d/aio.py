"""The asyncio clients: the same classes as :mod:`c2d`, with ``await``, ``async with`` and
``async for``. They run on c2d's engine threads (no thread per call), and cancelling a task
cancels the operation it awaits."""

from __future__ import annotations

import os
from types import TracebackType
from typing import AsyncIterator, Optional, Type, TypeVar, Union

from . import _native
from ._model import (
    Ack,
    ConnectionState,
    ConnectionStatus,
    Device,
    FeedbackRecord,
    FeedbackStatus,
    Message,
    MessageView,
    Retry,
    RetryPolicy,
    ServiceTransport,
    Transport,
    connect_options,
)
from .errors import ClosedError

PathLike = Union[str, "os.PathLike[str]"]


class ReceivedMessage(MessageView):
    """A message a device received; settle it once (a second settle raises
    :class:`~c2d.AlreadySettledError`)."""

    __slots__ = ()

    async def complete(self) -> None:
        """Done: the message leaves the queue (MQTT: its PUBACK is sent now)."""
        await self._native.complete_async()

    async def reject(self) -> None:
        """Dead-letter it (AMQP; over MQTT :class:`~c2d.UnsupportedError`)."""
        await self._native.reject_async()

    async def abandon(self) -> None:
        """Put it back for another delivery (AMQP; over MQTT :class:`~c2d.UnsupportedError`)."""
        await self._native.abandon_async()


async def _status_changes(changes: "_native.StatusChanges") -> AsyncIterator[ConnectionStatus]:
    while True:
        status = await changes.next_async()
        if status is None:
            return
        yield ConnectionStatus._from_native(status)


# the native classes under names that class bodies, whose `_native` attribute hides the
# module, can still use
_NativeDeviceClient = _native.DeviceClient
_NativeServiceClient = _native.ServiceClient
C = TypeVar("C", bound="_Connection")


class _Connection:
    """What both clients have: a connection status, its changes, and ``async with``."""

    __slots__ = ()
    _native: Union[_NativeDeviceClient, _NativeServiceClient]

    async def close(self) -> None:
        raise NotImplementedError

    @property
    def status(self) -> ConnectionStatus:
        """The connection's status now."""
        return ConnectionStatus._from_native(self._native.status)

    def status_changes(self) -> AsyncIterator[ConnectionStatus]:
        """Every change of status from now on."""
        return _status_changes(self._native.status_changes())

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()


class DeviceClient(_Connection):
    """A device's connection to its hub (see :class:`c2d.DeviceClient`)."""

    __slots__ = ("_native",)
    _native: _NativeDeviceClient

    def __init__(self, native: _NativeDeviceClient) -> None:
        self._native = native

    @classmethod
    async def connect(
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
    ) -> "DeviceClient":
        """Connects (see :meth:`c2d.DeviceClient.connect` for the options)."""
        native = await _native.DeviceClientOptions(
            connection_string,
            **connect_options(transport, Transport, trusted_ca, trusted_ca_file, retry),
            port=port,
            mqtt_port=mqtt_port,
            amqp_port=amqp_port,
            https_port=https_port,
            timeout=timeout,
            sas_token_ttl=sas_token_ttl,
            in_flight=in_flight,
            poll_interval=poll_interval,
            cert=cert,
            cert_file=cert_file,
            key=key,
            key_file=key_file,
            proxy=proxy,
        ).connect_async()
        return cls(native)

    async def receive(self, timeout: Optional[float] = None) -> Optional[ReceivedMessage]:
        """The next message, or ``None`` when ``timeout`` seconds pass; raises
        :class:`~c2d.ClosedError` once the client is closed."""
        native = await self._native.receive_async(timeout)
        if native is None:
            return None
        # no await between the result and the claim: a task cancelled before this point
        # leaves the message unclaimed, and the engine gives it to the next receive
        native.claim()
        return ReceivedMessage(native)

    async def messages(self) -> AsyncIterator[ReceivedMessage]:
        """Every message, as it arrives; ends when the client is closed."""
        while True:
            try:
                native = await self._native.receive_async(None)
            except ClosedError:
                return
            if native is not None:
                native.claim()
                yield ReceivedMessage(native)

    async def close(self) -> None:
        """Disconnects (see :meth:`c2d.DeviceClient.close`)."""
        await self._native.close_async()

    @property
    def transport(self) -> Transport:
        return Transport(self._native.transport)



class SentMessage:
    """A message the hub accepted."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.SentMessage") -> None:
        self._native = native

    @property
    def message_id(self) -> str:
        return self._native.message_id

    async def outcome(self, timeout: Optional[float] = None) -> FeedbackRecord:
        """This message's own feedback record (see :meth:`c2d.SentMessage.outcome`: one
        service client per hub, and on a manual clock the batching follows that clock)."""
        return FeedbackRecord._from_native(await self._native.outcome_async(timeout))


class Feedback:
    """Every feedback record from the moment it was made; ``async for`` over it, or await
    :meth:`next` with a timeout."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.FeedbackReceiver") -> None:
        self._native = native

    async def next(self, timeout: Optional[float] = None) -> Optional[FeedbackRecord]:
        """The next record, or ``None`` when ``timeout`` seconds pass; raises
        :class:`~c2d.ClosedError` once the client is closed."""
        record, is_open = await self._native.next_async(timeout)
        if not is_open:
            raise ClosedError("the service client was closed", "closed")
        return None if record is None else FeedbackRecord._from_native(record)

    def __aiter__(self) -> AsyncIterator[FeedbackRecord]:
        return self._records()

    async def _records(self) -> AsyncIterator[FeedbackRecord]:
        while True:
            record, is_open = await self._native.next_async(None)
            if not is_open:
                return
            if record is not None:
                yield FeedbackRecord._from_native(record)


class Registry:
    """The devices of a hub (see :class:`c2d.Registry`)."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.Registry") -> None:
        self._native = native

    async def create_device(self, device_id: str) -> Device:
        return Device._from_native(await self._native.create_device_async(device_id))

    async def get_device(self, device_id: str) -> Device:
        return Device._from_native(await self._native.get_device_async(device_id))

    async def list_devices(self, top: int = 1000) -> "list[Device]":
        return [Device._from_native(d) for d in await self._native.list_devices_async(top)]

    async def delete_device(self, device_id: str) -> None:
        await self._native.delete_device_async(device_id)


class ServiceClient(_Connection):
    """A back end's connection to its hub (see :class:`c2d.ServiceClient`)."""

    __slots__ = ("_native", "registry")
    _native: _NativeServiceClient

    def __init__(self, native: _NativeServiceClient) -> None:
        self._native = native
        #: The hub's registry.
        self.registry = Registry(native.registry)

    @classmethod
    async def connect(
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
        """Connects (see :meth:`c2d.ServiceClient.connect` for the options)."""
        native = await _native.ServiceClientOptions(
            connection_string,
            **connect_options(transport, ServiceTransport, trusted_ca, trusted_ca_file, retry),
            port=port,
            amqp_port=amqp_port,
            https_port=https_port,
            timeout=timeout,
            sas_token_ttl=sas_token_ttl,
            proxy=proxy,
        ).connect_async()
        return cls(native)

    async def send(self, device_id: str, message: Union[Message, bytes, str]) -> SentMessage:
        """Sends a message to a device; returns once the hub has accepted it."""
        if not isinstance(message, Message):
            message = Message(message)
        return SentMessage(await self._native.send_async(device_id, *message._native_args()))

    def feedback(self) -> Feedback:
        """Every feedback record from now on."""
        return Feedback(self._native.feedback())

    async def purge(self, device_id: str) -> int:
        """Removes every message queued for a device; returns how many there were."""
        result: int = await self._native.purge_async(device_id)
        return result

    async def close(self) -> None:
        await self._native.close_async()



__all__ = [
    "Ack",
    "ConnectionState",
    "ConnectionStatus",
    "Device",
    "DeviceClient",
    "Feedback",
    "FeedbackRecord",
    "FeedbackStatus",
    "Message",
    "ReceivedMessage",
    "Registry",
    "RetryPolicy",
    "SentMessage",
    "ServiceClient",
    "ServiceTransport",
    "Transport",
]
