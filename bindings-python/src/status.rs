//! Connection status: the current one, and a stream of changes.

use std::sync::Arc;

use pyo3::prelude::*;
use tokio::sync::Mutex;

use c2d::ConnectionStatus;

use crate::runtime::{awaitable, seconds, wait_for};

/// A status as `(kind, reason)`: `("connected", None)`, `("reconnecting", None)` or
/// `("disconnected", why)`.
pub type Status = (&'static str, Option<String>);

/// The Python form of a status.
pub fn status(s: ConnectionStatus) -> Status {
    match s {
        ConnectionStatus::Connected => ("connected", None),
        ConnectionStatus::Reconnecting => ("reconnecting", None),
        ConnectionStatus::Disconnected(why) => ("disconnected", Some(why)),
    }
}

/// The status changes of one client, from the moment this was made.
#[pyclass(module = "c2d._native", frozen)]
pub struct StatusChanges {
    receiver: Arc<Mutex<c2d::StatusReceiver>>,
}

impl StatusChanges {
    /// Follows `receiver`.
    pub fn new(receiver: c2d::StatusReceiver) -> Self {
        StatusChanges {
            receiver: Arc::new(Mutex::new(receiver)),
        }
    }
}

#[pymethods]
impl StatusChanges {
    /// The next change, waiting at most `timeout` seconds (`None`: as long as it takes);
    /// `None` when the time is up, or once the client is gone.
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Status>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let receiver = self.receiver.clone();
        let next = wait_for(
            py,
            timeout,
            async move { receiver.lock().await.recv().await },
        )?;
        Ok(next.flatten().map(status))
    }

    /// [`next`](Self::next), awaitable, without a timeout: `None` once the client is gone.
    fn next_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let receiver = self.receiver.clone();
        awaitable(py, async move {
            Ok(receiver.lock().await.recv().await.map(status))
        })
    }
}
