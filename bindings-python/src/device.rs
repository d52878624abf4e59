//! The device client: connect, receive, close; what it is connected with.

use pyo3::prelude::*;

use c2d::{Error, ErrorKind};

use crate::error::to_py;
use crate::message::ReceivedMessage;
use crate::runtime::{awaitable, seconds, wait, wait_for};
use crate::status::{status, Status, StatusChanges};

/// A device's connection to its hub.
#[pyclass(module = "c2d._native", frozen)]
pub struct DeviceClient {
    pub(crate) client: c2d::DeviceClient,
}

fn closed() -> PyErr {
    to_py(Error::new(
        ErrorKind::Closed,
        "the device client was closed",
    ))
}

#[pymethods]
impl DeviceClient {
    /// The next message, waiting at most `timeout` seconds (`None`: as long as it takes);
    /// `None` when the time is up. Raises `ClosedError` once the client is closed, and the
    /// error that ended the connection for good (credentials refused, retries exhausted).
    #[pyo3(signature = (timeout = None))]
    fn receive(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<ReceivedMessage>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let next = match self.client.try_recv() {
            Some(next) => Some(next),
            None => wait_for(py, timeout, self.client.recv())?,
        };
        match next {
            None => Ok(None),
            Some(Ok(Some(m))) => Ok(Some(ReceivedMessage::new(m))),
            Some(Ok(None)) => Err(closed()),
            Some(Err(e)) => Err(to_py(e)),
        }
    }

    /// A message the client already holds, at once and without releasing the GIL (no thread
    /// is woken); `None` when there is none yet. Raises as [`receive`](Self::receive) does.
    fn receive_now(&self) -> PyResult<Option<ReceivedMessage>> {
        match self.client.try_recv() {
            None => Ok(None),
            Some(Ok(Some(m))) => Ok(Some(ReceivedMessage::new(m))),
            Some(Ok(None)) => Err(closed()),
            Some(Err(e)) => Err(to_py(e)),
        }
    }

    /// [`receive`](Self::receive), awaitable. The awaiting coroutine claims the message
    /// (`claim()`); one dropped unclaimed, because its task was cancelled as it arrived, goes
    /// back to this client for the next receive.
    #[pyo3(signature = (timeout = None))]
    fn receive_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let client = self.client.clone();
        awaitable(py, async move {
            let next = match timeout {
                Some(t) => match tokio::time::timeout(t, client.recv()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(None),
                },
                None => client.recv().await,
            };
            match next {
                Ok(Some(m)) => Ok(Some(ReceivedMessage::unclaimed(m))),
                Ok(None) => Err(closed()),
                Err(e) => Err(to_py(e)),
            }
        })
    }

    /// Disconnects, after the settlements already made have reached the hub. Messages not
    /// settled go back to the hub's queue. Closing twice does nothing.
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

    /// The transport, as its name (`"amqp"`).
    #[getter]
    fn transport(&self) -> &'static str {
        self.client.transport().as_str()
    }

    /// Duplicates settled without being handed over (with `suppress_duplicates`).
    #[getter]
    fn duplicates_suppressed(&self) -> u64 {
        self.client.duplicates_suppressed()
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

impl Drop for DeviceClient {
    /// A client dropped without `close()` is closed in the background.
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = c2d::runtime::spawn(async move { client.close().await });
    }
}
