"""c2d: Azure IoT Hub cloud-to-device messaging on c2d's Rust engine.

Devices receive the C2D messages queued for them and complete, reject or abandon each one;
back ends send them, follow each one's outcome and every feedback record, purge queues and
manage devices. :mod:`c2d.aio` has the same classes for asyncio, and :mod:`c2d.testing` a
local hub for tests. The engine logs to the ``logging`` loggers ``c2d.*`` (the clients) and
``c2d_hub.*`` (a local hub).
"""

from __future__ import annotations

import atexit

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
    RetryCallable,
    RetryPolicy,
    ServiceTransport,
    Transport,
)
from ._sync import (
    DeviceClient,
    Feedback,
    ReceivedMessage,
    Registry,
    SendMany,
    SendResult,
    SentMessage,
    ServiceClient,
)
from .errors import (
    AlreadySettledError,
    C2DError,
    ClosedError,
    DeviceNotFoundError,
    InternalError,
    InvalidArgumentError,
    MessageLockLostError,
    MessageTooLargeError,
    OperationTimeoutError,
    ProtocolError,
    QueueFullError,
    QuotaExceededError,
    ThrottledError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedError,
)

# the asyncio clients and the test hub as attributes too (``c2d.aio.DeviceClient`` after a
# plain ``import c2d``), after the names above that they build on
from . import aio, testing  # noqa: E402

__version__: str = _native.__version__

# before the interpreter finalizes: engine threads finish their calls into Python, and log no more
atexit.register(_native.before_exit)


def reset_log_cache() -> None:
    """Makes the engine read the ``c2d`` loggers' levels again (it caches them once it has
    logged): call it after changing them."""
    _native.reset_log_cache()


__all__ = [
    "Ack",
    "AlreadySettledError",
    "C2DError",
    "ClosedError",
    "ConnectionState",
    "ConnectionStatus",
    "Device",
    "DeviceClient",
    "DeviceNotFoundError",
    "FanOutSummary",
    "Feedback",
    "FeedbackRecord",
    "FeedbackStatus",
    "InternalError",
    "InvalidArgumentError",
    "Message",
    "MessageLockLostError",
    "MessageTooLargeError",
    "OperationTimeoutError",
    "ProtocolError",
    "QueueFullError",
    "QuotaExceededError",
    "ReceivedMessage",
    "Registry",
    "RetryCallable",
    "RetryPolicy",
    "SendMany",
    "SendResult",
    "SentMessage",
    "ServiceClient",
    "ServiceTransport",
    "ThrottledError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedError",
    "Transport",
    "__version__",
    "aio",
    "reset_log_cache",
    "testing",
]
