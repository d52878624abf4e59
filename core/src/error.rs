//! The error kinds of c2d. Each kind tells the caller what to do next; every binding maps
//! them exhaustively (see docs/architecture.md, "Errors").

use std::fmt;

/// What went wrong, in terms of what the caller should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The call itself is wrong (bad connection string, bad id, bad option): fix the call.
    InvalidArgument,
    /// The credentials were refused or lack the right: fix the credentials.
    Unauthorized,
    /// The device is not registered in the hub: register it.
    DeviceNotFound,
    /// The device's C2D queue is full: wait for the device to drain it.
    QueueFull,
    /// The message is larger than the hub accepts: send less.
    MessageTooLarge,
    /// The hub throttled the request: slow down.
    Throttled,
    /// The hub could not be reached or is not serving now: retry later.
    Unavailable,
    /// The operation did not finish in time: retry or give up.
    Timeout,
    /// The message's lock expired or was lost with its link: expect a redelivery.
    MessageLockLost,
    /// The message was already completed, rejected or abandoned: fix the code path.
    AlreadySettled,
    /// The transport cannot do this (for example reject over MQTT): use another transport.
    Unsupported,
    /// The client or hub was closed: make a new one.
    Closed,
    /// The peer broke the protocol: report the peer.
    Protocol,
    /// A bug in c2d: report it.
    Internal,
    /// The hub's daily message quota is used up (IoT Hub 403002 IotHubQuotaExceeded): not
    /// transient within the day; wait for the quota to reset (00:00 UTC) or add units.
    QuotaExceeded,
}

impl ErrorKind {
    /// Every kind, in declaration order (bindings walk this list in their tests).
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::InvalidArgument,
        ErrorKind::Unauthorized,
        ErrorKind::DeviceNotFound,
        ErrorKind::QueueFull,
        ErrorKind::MessageTooLarge,
        ErrorKind::Throttled,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::MessageLockLost,
        ErrorKind::AlreadySettled,
        ErrorKind::Unsupported,
        ErrorKind::Closed,
        ErrorKind::Protocol,
        ErrorKind::Internal,
        ErrorKind::QuotaExceeded,
    ];

    /// A short, stable name for the kind (`"device not found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::DeviceNotFound => "device not found",
            ErrorKind::QueueFull => "queue full",
            ErrorKind::MessageTooLarge => "message too large",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MessageLockLost => "message lock lost",
            ErrorKind::AlreadySettled => "already settled",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Closed => "closed",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Internal => "internal error",
            ErrorKind::QuotaExceeded => "quota exceeded",
        }
    }

    /// The kind's stable name, as the bindings show it: `device_not_found` (Python's
    /// `C2DError.kind`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::DeviceNotFound => "device_not_found",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::MessageTooLarge => "message_too_large",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MessageLockLost => "message_lock_lost",
            ErrorKind::AlreadySettled => "already_settled",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Closed => "closed",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Internal => "internal",
            ErrorKind::QuotaExceeded => "quota_exceeded",
        }
    }

    /// The kind's stable code: `C2D_DEVICE_NOT_FOUND` (Node.js's `err.code`; C's result names
    /// it `C2D_RESULT_DEVICE_NOT_FOUND`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "C2D_INVALID_ARGUMENT",
            ErrorKind::Unauthorized => "C2D_UNAUTHORIZED",
            ErrorKind::DeviceNotFound => "C2D_DEVICE_NOT_FOUND",
            ErrorKind::QueueFull => "C2D_QUEUE_FULL",
            ErrorKind::MessageTooLarge => "C2D_MESSAGE_TOO_LARGE",
            ErrorKind::Throttled => "C2D_THROTTLED",
            ErrorKind::Unavailable => "C2D_UNAVAILABLE",
            ErrorKind::Timeout => "C2D_TIMEOUT",
            ErrorKind::MessageLockLost => "C2D_MESSAGE_LOCK_LOST",
            ErrorKind::AlreadySettled => "C2D_ALREADY_SETTLED",
            ErrorKind::Unsupported => "C2D_UNSUPPORTED",
            ErrorKind::Closed => "C2D_CLOSED",
            ErrorKind::Protocol => "C2D_PROTOCOL",
            ErrorKind::Internal => "C2D_INTERNAL",
            ErrorKind::QuotaExceeded => "C2D_QUOTA_EXCEEDED",
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled | ErrorKind::Unavailable | ErrorKind::Timeout
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A c2d error: a kind and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Makes an error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Shorthand for [`ErrorKind::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// The kind, which says what to do.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for people, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying may succeed (see [`ErrorKind::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// The result type of c2d.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_has_a_distinct_name() {
        let names: HashSet<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for k in ErrorKind::ALL {
            // the code is the name, upper case, prefixed: what every binding shows
            assert_eq!(k.code(), format!("C2D_{}", k.name().to_uppercase()));
        }
    }

    #[test]
    fn display_carries_kind_and_message() {
        let e = Error::new(ErrorKind::DeviceNotFound, "dev1 is not registered");
        assert_eq!(e.to_string(), "device not found: dev1 is not registered");
        assert!(!e.is_transient());
        assert!(Error::new(ErrorKind::Unavailable, "x").is_transient());
    }
}
