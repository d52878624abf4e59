//! The engine's one process-wide tokio runtime.
//!
//! Clients spawn their long-lived tasks (connections, reconnect loops, the feedback pump) on
//! this runtime, so they keep running whatever runtime (or none) the caller uses: the C and
//! Python bindings block on it, and async callers just await the clients' futures.

use std::sync::OnceLock;

use crate::error::{Error, ErrorKind, Result};

static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
static PID: OnceLock<u32> = OnceLock::new();

/// The runtime, built on first use with two worker threads named `c2d`.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    let pid = *PID.get_or_init(std::process::id);
    if pid != std::process::id() {
        return Err(Error::new(
            ErrorKind::Internal,
            "c2d was used before fork(): a forked child must not use the parent's clients; make new ones in a fresh process",
        ));
    }
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("c2d")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start the c2d runtime: {e}"),
            )
        })
}

/// Spawns a task on the engine's runtime.
pub fn spawn<F>(future: F) -> Result<tokio::task::JoinHandle<F::Output>>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(runtime()?.spawn(future))
}
