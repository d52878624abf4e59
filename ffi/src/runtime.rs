//! Blocking C calls on the engine's process-wide runtime.

use std::future::Future;
use std::time::Duration;

use c2d_core::{Error, ErrorKind, Result};

/// `timeout_ms` value that means "wait as long as it takes".
pub const C2D_TIMEOUT_INFINITE: u32 = u32::MAX;

/// Runs `future` to completion on the engine's runtime, blocking this thread.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::invalid_argument(
            "a c2d function that waits was called from one of c2d's own runtime threads \
             (inside a retry callback?); call it from another thread",
        ));
    }
    Ok(c2d_core::runtime::runtime()?.block_on(future))
}

/// Like `block_on`, giving up after `timeout_ms` (`C2D_TIMEOUT_INFINITE`: never) with a
/// `Timeout` error that says what was being waited for.
pub(crate) fn block_on_for<F: Future>(timeout_ms: u32, what: &str, future: F) -> Result<F::Output> {
    if timeout_ms == C2D_TIMEOUT_INFINITE {
        return block_on(future);
    }
    let limit = Duration::from_millis(timeout_ms.into());
    block_on(async move { tokio::time::timeout(limit, future).await })?.map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("{what} did not happen within {timeout_ms} ms"),
        )
    })
}
