//! The engine's errors as the exception classes of `c2d.errors`, one per kind.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

use c2d::{Error, ErrorKind};

/// The name of the exception class of `kind` in `c2d.errors`.
pub fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Unauthorized => "UnauthorizedError",
        ErrorKind::DeviceNotFound => "DeviceNotFoundError",
        ErrorKind::QueueFull => "QueueFullError",
        ErrorKind::MessageTooLarge => "MessageTooLargeError",
        ErrorKind::Throttled => "ThrottledError",
        ErrorKind::Unavailable => "UnavailableError",
        ErrorKind::Timeout => "OperationTimeoutError",
        ErrorKind::MessageLockLost => "MessageLockLostError",
        ErrorKind::AlreadySettled => "AlreadySettledError",
        ErrorKind::Unsupported => "UnsupportedError",
        ErrorKind::Closed => "ClosedError",
        ErrorKind::Protocol => "ProtocolError",
        ErrorKind::Internal => "InternalError",
        ErrorKind::QuotaExceeded => "QuotaExceededError",
        // ErrorKind is non_exhaustive for Rust callers; a kind added to core without a class
        // here is a bug of this crate, caught by the test that walks every kind
        _ => "InternalError",
    }
}

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The engine's error as an exception of its kind's class.
pub fn to_py(error: Error) -> PyErr {
    Python::attach(|py| {
        let class = ERRORS
            .get_or_try_init(py, || PyModule::import(py, "c2d.errors").map(Bound::unbind))
            .and_then(|m| m.bind(py).getattr(class_name(error.kind())));
        match class {
            Ok(class) => match class.call1((error.message().to_string(), error.kind().name())) {
                Ok(instance) => PyErr::from_value(instance),
                Err(e) => e,
            },
            // c2d.errors is part of the package: only a broken installation gets here
            Err(e) => PyRuntimeError::new_err(format!("{error} (and c2d.errors: {e})")),
        }
    })
}

/// Every error kind's name, in the engine's order (for the tests that walk them all).
#[pyfunction]
pub fn error_kinds() -> Vec<String> {
    ErrorKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect()
}

/// Raises the exception the engine's error of kind `kind` (a name from [`error_kinds`])
/// becomes, with `message`.
#[pyfunction]
pub fn raise_error(kind: &str, message: &str) -> PyResult<()> {
    let kind = ErrorKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| to_py(Error::invalid_argument(format!("no error kind {kind:?}"))))?;
    Err(to_py(Error::new(kind, message)))
}
