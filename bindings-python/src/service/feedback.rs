//! Feedback records, and the stream of every record a service client reads.

use pyo3::prelude::*;

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
    pub(crate) receiver: c2d::FeedbackReceiver,
}

/// `(record, open)` for what a wait ended with (`None`: the time ran out).
fn outcome(waited: Option<Option<c2d::FeedbackRecord>>) -> (Option<Record>, bool) {
    match waited {
        None => (None, true),
        Some(Some(r)) => (Some(record(r)), true),
        Some(None) => (None, false),
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
        let waited = wait_for(py, timeout, async move { receiver.recv().await })?;
        Ok(outcome(waited))
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
            let waited = match timeout {
                Some(t) => tokio::time::timeout(t, receiver.recv()).await.ok(),
                None => Some(receiver.recv().await),
            };
            Ok(outcome(waited))
        })
    }
}
