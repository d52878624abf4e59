//! The service client: send, each message's own outcome, feedback, purge, the registry.

use pyo3::prelude::*;

use c2d::Error;

use crate::error::to_py;
use crate::message::OutgoingMessage;
use crate::runtime::{awaitable, seconds, wait, wait_for};
use crate::service::feedback::{record, FeedbackReceiver, Record};
use crate::service::registry::Registry;
use crate::status::{status, Status, StatusChanges};

/// A back end's connection to its hub.
#[pyclass(module = "c2d._native", frozen)]
pub struct ServiceClient {
    pub(crate) client: c2d::ServiceClient,
}

/// A message the hub accepted, whose outcome can be waited for.
#[pyclass(module = "c2d._native", frozen)]
pub struct SentMessage {
    pub(crate) sent: c2d::SentMessage,
}

#[pymethods]
impl SentMessage {
    /// The message's id (generated when the message had none).
    #[getter]
    fn message_id(&self) -> &str {
        self.sent.message_id()
    }

    /// This message's own feedback record, waiting at most `timeout` seconds (`None`: as
    /// long as it takes); raises `OperationTimeoutError` when the time is up.
    #[pyo3(signature = (timeout = None))]
    fn outcome(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Record> {
        let limit = timeout.map(|t| seconds("timeout", t)).transpose()?;
        match wait_for(py, limit, self.sent.outcome())? {
            Some(r) => r.map(record).map_err(to_py),
            None => Err(outcome_timeout(self.sent.message_id(), timeout)),
        }
    }

    /// [`outcome`](Self::outcome), awaitable.
    #[pyo3(signature = (timeout = None))]
    fn outcome_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let sent = self.sent.clone();
        awaitable(py, async move {
            match limit {
                Some(l) => match tokio::time::timeout(l, sent.outcome()).await {
                    Ok(r) => r.map(record).map_err(to_py),
                    Err(_) => Err(outcome_timeout(sent.message_id(), timeout)),
                },
                None => sent.outcome().await.map(record).map_err(to_py),
            }
        })
    }
}

fn outcome_timeout(message_id: &str, timeout: Option<f64>) -> PyErr {
    to_py(Error::new(
        c2d::ErrorKind::Timeout,
        format!(
            "no feedback for message {message_id} within {} s",
            timeout.unwrap_or_default()
        ),
    ))
}

impl ServiceClient {
    /// Sending `message` to `device_id`, as a future (see [`send`](Self::send)).
    fn sent(
        &self,
        device_id: String,
        message: &OutgoingMessage,
    ) -> impl std::future::Future<Output = PyResult<SentMessage>> + Send {
        let (client, message) = (self.client.clone(), message.0.clone());
        async move {
            let sent = client.send(&device_id, message).await.map_err(to_py)?;
            Ok(SentMessage { sent })
        }
    }
}

#[pymethods]
impl ServiceClient {
    /// Sends a message to a device; returns once the hub has accepted it.
    fn send(
        &self,
        py: Python<'_>,
        device_id: String,
        message: &OutgoingMessage,
    ) -> PyResult<SentMessage> {
        wait(py, self.sent(device_id, message))?
    }

    /// [`send`](Self::send), awaitable.
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
        message: &OutgoingMessage,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.sent(device_id, message))
    }

    /// Sends `message` to every device `devices` yields (taken as sends start), each with
    /// its own message id; see `c2d.ServiceClient.send_many`.
    #[pyo3(signature = (devices, message, *, in_flight = 64, rate = None, tier = None,
        units = 1, retry = None))]
    #[allow(clippy::too_many_arguments)]
    fn send_many(
        &self,
        devices: &Bound<'_, PyAny>,
        message: &OutgoingMessage,
        in_flight: usize,
        rate: Option<f64>,
        tier: Option<&str>,
        units: u32,
        retry: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<crate::service::fanout::SendMany> {
        let rate = c2d::Rate::from_options(rate, tier, Some(units)).map_err(to_py)?;
        let mut fan = c2d::FanOut::default().in_flight(in_flight).rate(rate);
        if let Some(retry) = retry {
            fan = fan.retry(crate::retry::from_option(retry)?);
        }
        crate::service::fanout::SendMany::start(&self.client, devices, message, fan)
    }

    /// Every feedback record from now on.
    fn feedback(&self) -> PyResult<FeedbackReceiver> {
        let receiver = self.client.feedback().map_err(to_py)?;
        Ok(FeedbackReceiver { receiver })
    }

    /// Removes every message queued for a device; returns how many.
    fn purge(&self, py: Python<'_>, device_id: &str) -> PyResult<u64> {
        let r = wait(py, self.client.purge(device_id))?.map_err(to_py)?;
        Ok(r.total_messages_purged)
    }

    /// [`purge`](Self::purge), awaitable.
    fn purge_async<'py>(&self, py: Python<'py>, device_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move {
            let r = client.purge(&device_id).await.map_err(to_py)?;
            Ok(r.total_messages_purged)
        })
    }

    /// The registry of the client's hub.
    #[getter]
    fn registry(&self) -> Registry {
        Registry::new(self.client.registry().clone())
    }

    /// Closes the connection; waiting calls end with `ClosedError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        wait(py, self.client.close())
    }

    /// [`close`](Self::close), awaitable.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move {
            client.close().await;
            Ok(())
        })
    }

    /// The connection's status now.
    #[getter]
    fn status(&self) -> Status {
        status(self.client.status().current())
    }

    /// The status changes from now on.
    fn status_changes(&self) -> StatusChanges {
        StatusChanges::new(self.client.status())
    }
}

impl Drop for ServiceClient {
    /// A client dropped without `close()` is closed in the background.
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = c2d::runtime::spawn(async move { client.close().await });
    }
}
