"""The exceptions c2d raises: one class per kind of error, each saying what to do.

Every class derives from :class:`C2DError`, and where a standard exception means the same,
from that too: ``except LookupError`` catches :class:`DeviceNotFoundError`. ``err.kind`` is
the kind's stable name (``"device_not_found"``).
"""

from __future__ import annotations


class C2DError(Exception):
    """Base class of every c2d error."""

    #: The kind's stable name.
    kind: str = "internal"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class InvalidArgumentError(C2DError, ValueError):
    """An argument is wrong: fix the call."""

    kind = "invalid_argument"


class UnauthorizedError(C2DError, PermissionError):
    """The hub refused the credentials: fix them."""

    kind = "unauthorized"


class DeviceNotFoundError(C2DError, LookupError):
    """The device is not registered: register it."""

    kind = "device_not_found"


class QueueFullError(C2DError):
    """The device's queue is full: wait for the device to drain it."""

    kind = "queue_full"


class MessageTooLargeError(C2DError, ValueError):
    """The message is over the hub's size limit: send less."""

    kind = "message_too_large"


class ThrottledError(C2DError):
    """The hub is throttling: slow down."""

    kind = "throttled"


class UnavailableError(C2DError, ConnectionError):
    """The hub cannot be reached now: retry later."""

    kind = "unavailable"


class OperationTimeoutError(C2DError, TimeoutError):
    """The operation took too long: retry or give up."""

    kind = "timeout"


class MessageLockLostError(C2DError):
    """The message's lock is gone (its connection dropped, or its lock ended): the hub will
    deliver it again."""

    kind = "message_lock_lost"


class AlreadySettledError(C2DError):
    """The message was already completed, rejected or abandoned: fix the code path."""

    kind = "already_settled"


class UnsupportedError(C2DError, NotImplementedError):
    """The transport cannot do this (MQTT cannot reject or abandon): use another."""

    kind = "unsupported"


class ClosedError(C2DError):
    """The client was closed: make a new one."""

    kind = "closed"


class ProtocolError(C2DError):
    """The peer broke the protocol: report it."""

    kind = "protocol"


class InternalError(C2DError):
    """A bug in c2d: report it."""

    kind = "internal"


class QuotaExceededError(C2DError):
    """The hub's daily message quota is used up (IoT Hub 403002): retrying within the day
    does not help; wait for the quota to reset (00:00 UTC) or add units."""

    kind = "quota_exceeded"


__all__ = [
    "C2DError",
    "InvalidArgumentError",
    "UnauthorizedError",
    "DeviceNotFoundError",
    "QueueFullError",
    "MessageTooLargeError",
    "ThrottledError",
    "UnavailableError",
    "OperationTimeoutError",
    "MessageLockLostError",
    "AlreadySettledError",
    "UnsupportedError",
    "ClosedError",
    "ProtocolError",
    "InternalError",
    "QuotaExceededError",
]
