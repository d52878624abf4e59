//! `c2d._native`: the Python module of c2d's engine. Each file is the Python translation of
//! the core module of the same name; the `c2d` package around it adds the exception classes,
//! enums, iterators and context managers.

mod device;
mod error;
mod hub;
mod message;
mod options;
mod retry;
mod runtime;
mod service;
mod status;

use pyo3::prelude::*;

/// The native half of the `c2d` package.
#[pymodule]
fn _native(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    c2d::tls::install_crypto_provider();
    // the engine's `tracing` records reach Python's `logging` as `log` records
    let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels)?
        .filter(log::LevelFilter::Warn)
        .filter_target("c2d".to_owned(), log::LevelFilter::Trace)
        .filter_target("c2d_hub".to_owned(), log::LevelFilter::Trace);
    // a second import in the same process (a subinterpreter) keeps the first logger
    if let Ok(reset) = logger.install() {
        let _ = LOG_RESET.set(reset);
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<device::DeviceClient>()?;
    m.add_class::<options::ClientOptions>()?;
    m.add_class::<message::OutgoingMessage>()?;
    m.add_class::<message::ReceivedMessage>()?;
    m.add_class::<service::client::ServiceClient>()?;
    m.add_class::<service::client::SentMessage>()?;
    m.add_class::<service::fanout::SendMany>()?;
    m.add_class::<service::feedback::FeedbackReceiver>()?;
    m.add_class::<service::registry::Registry>()?;
    m.add_class::<status::StatusChanges>()?;
    m.add_class::<retry::RetryPolicy>()?;
    m.add_class::<hub::LocalHub>()?;
    m.add_function(wrap_pyfunction!(error::error_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(error::raise_error, m)?)?;
    m.add_function(wrap_pyfunction!(reset_log_cache, m)?)?;
    m.add_function(wrap_pyfunction!(before_exit, m)?)?;
    Ok(())
}

/// Makes the engine read Python's logging levels again (it caches them; call this after
/// changing the level of a `c2d` logger once c2d has logged).
#[pyfunction]
fn reset_log_cache() {
    if let Some(handle) = LOG_RESET.get() {
        handle.reset();
    }
}

/// Called at exit, before the interpreter finalizes (`c2d` registers it with `atexit`): stops
/// the engine's records from reaching `logging`, then lets go of the GIL for a moment so that
/// an engine thread still finishing a call into Python (a log record, a retry callable) gets
/// it done. An engine thread that takes the GIL once
/// finalization has begun is ended by the interpreter in the middle of Rust frames, and the
/// unwinding then frees Python objects without the GIL: the process crashed that way at exit,
/// about one asyncio run in ten (examples/python/device_asyncio.py).
#[pyfunction]
fn before_exit(py: Python<'_>) {
    log::set_max_level(log::LevelFilter::Off);
    py.detach(|| std::thread::sleep(std::time::Duration::from_millis(50)));
}

static LOG_RESET: std::sync::OnceLock<pyo3_log::ResetHandle> = std::sync::OnceLock::new();
