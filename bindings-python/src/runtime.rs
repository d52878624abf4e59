//! Waiting on the engine's runtime from Python: blocking calls release the GIL and wake every
//! 100 ms to let Ctrl-C through; async calls become asyncio awaitables.

use std::future::Future;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::error::to_py;

/// How often a blocking wait looks for a signal (Ctrl-C) from Python.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Runs `future` on the engine's runtime with the GIL released, until it ends, `timeout`
/// passes (`Ok(None)`), or a signal handler raises (its exception, and the future is dropped,
/// which cancels the operation).
pub fn wait_for<F>(
    py: Python<'_>,
    timeout: Option<Duration>,
    future: F,
) -> PyResult<Option<F::Output>>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = c2d::runtime::runtime().map_err(to_py)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut future = std::pin::pin!(future);
    loop {
        let slice = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_CHECK),
            None => SIGNAL_CHECK,
        };
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(slice, future.as_mut()).await })
        });
        match step {
            Ok(output) => return Ok(Some(output)),
            Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(None),
            Err(_) => py.check_signals()?,
        }
    }
}

/// Runs `future` to its end (see [`wait_for`]).
pub fn wait<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    wait_for(py, None, future)?.ok_or_else(|| {
        to_py(c2d::Error::new(
            c2d::ErrorKind::Internal,
            "a wait without a deadline ended",
        ))
    })
}

/// An asyncio awaitable of `future`, run on the engine's runtime; cancelling the awaiting
/// task drops the future.
pub fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    c2d::runtime::runtime().map_err(to_py)?;
    pyo3_async_runtimes::tokio::future_into_py(py, future)
}

/// Gives the engine's runtime to pyo3-async-runtimes, so awaitables run where the blocking
/// calls and the clients' own tasks do.
pub fn init() {
    if let Ok(runtime) = c2d::runtime::runtime() {
        let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime);
    }
}

/// Seconds from Python as a duration: finite and not negative.
pub fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    c2d::duration::seconds(what, value).map_err(to_py)
}

/// Seconds from Python, if given.
pub fn opt_seconds(what: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    c2d::duration::opt_seconds(what, value).map_err(to_py)
}
