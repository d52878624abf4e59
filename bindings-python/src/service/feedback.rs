//! Feedback records, and the stream of every record a service client reads.

use std::sync::Arc;

use pyo3::prelude::*;
use tokio::sync::Mutex;

use c2d::FeedbackRecord;

use crate::message::epoch_seconds;
use crate::runtime::{awaitable, seconds, wait_for};

/// A record as `(original_message_id, device_id, device_generation_id, enqueued_time,
/// status, description)`, the time in seconds since the Unix epoch; `c2d.FeedbackRecord`
/// is made from it.
pub type Record = (String, String, String, f64, &'static str, String);

/// The Python form of a record.
pub fn record(r: FeedbackRecord) -> Record {
    (
        r.original_message_id,
        r.device_id,
        r.device_generation_id,
        epoch_seconds(r.enqueued_time),
        r.status.as_str(),
        r.description,
    )
}

/// Every feedback record a service client reads from the moment this was made.
#[pyclass(module = "c2d._native", frozen)]
pub struct FeedbackReceiver {
    receiver: Arc<Mutex<c2d::FeedbackReceiver>>,
}

impl FeedbackReceiver {
    /// Follows `receiver`.
    pub fn new(receiver: c2d::FeedbackReceiver) -> Self {
        FeedbackReceiver {
            receiver: Arc::new(Mutex::new(receiver)),
        }
    }
}

#[pymethods]
impl FeedbackReceiver {
    /// The next record, waiting at most `timeout` seconds (`None`: as long as it takes).
    /// Returns `(record, open)`: `record` is `None` when the time is up or the client is
    /// closed, and `open` is `False` once it is closed.
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(Option<Record>, bool)> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let receiver = self.receiver.clone();
        Ok(
            match wait_for(
                py,
                timeout,
                async move { receiver.lock().await.recv().await },
            )? {
                None => (None, true),
                Some(Some(r)) => (Some(record(r)), true),
                Some(None) => (None, false),
            },
        )
    }

    /// [`next`](Self::next), awaitable.
    #[pyo3(signature = (timeout = None))]
    fn next_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let receiver = self.receiver.clone();
        awaitable(py, async move {
            let mut receiver = receiver.lock().await;
            Ok(match timeout {
                Some(t) => match tokio::time::timeout(t, receiver.recv()).await {
                    Ok(Some(r)) => (Some(record(r)), true),
                    Ok(None) => (None, false),
                    Err(_) => (None, true),
                },
                None => match receiver.recv().await {
                    Some(r) => (Some(record(r)), true),
                    None => (None, false),
                },
            })
        })
    }
}
