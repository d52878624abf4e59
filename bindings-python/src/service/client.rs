//! The service client: send, each message's own outcome, feedback, purge, the registry.

use pyo3::prelude::*;

use c2d::{Error, ServiceTransport};

use crate::device::trusted_ca_pem;
use crate::error::to_py;
use crate::message::outgoing;
use crate::runtime::{awaitable, seconds, wait, wait_for};
use crate::service::feedback::{record, FeedbackReceiver, Record};
use crate::service::registry::Registry;
use crate::status::{status, Status, StatusChanges};

fn transport(name: &str) -> PyResult<ServiceTransport> {
    match name {
        "amqp" => Ok(ServiceTransport::Amqp),
        "amqp_ws" => Ok(ServiceTransport::AmqpWs),
        other => Err(to_py(Error::invalid_argument(format!(
            "a service client's transport is amqp or amqp_ws, not {other:?}"
        )))),
    }
}

/// The options of a service client, checked: `connect()` or `connect_async()` them.
#[pyclass(module = "c2d._native", frozen)]
pub struct ServiceClientOptions {
    builder: c2d::ServiceClientBuilder,
}

#[pymethods]
impl ServiceClientOptions {
    /// Reads the connection string and the options.
    #[new]
    #[pyo3(signature = (connection_string, *, transport = "amqp", trusted_ca = None,
        trusted_ca_file = None, port = None, amqp_port = None, https_port = None,
        retry = None, timeout = None, sas_token_ttl = None, proxy = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        connection_string: &str,
        transport: &str,
        trusted_ca: Option<&Bound<'_, PyAny>>,
        trusted_ca_file: Option<std::path::PathBuf>,
        port: Option<u16>,
        amqp_port: Option<u16>,
        https_port: Option<u16>,
        retry: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        sas_token_ttl: Option<f64>,
        proxy: Option<&str>,
    ) -> PyResult<Self> {
        let mut b = c2d::ServiceClient::builder(connection_string)
            .map_err(to_py)?
            .transport(self::transport(transport)?);
        if let Some(pem) = trusted_ca_pem(trusted_ca, trusted_ca_file)? {
            b = b.trusted_ca_pem(pem);
        }
        for (port, set) in [
            (port, c2d::ServiceClientBuilder::port as fn(_, _) -> _),
            (amqp_port, c2d::ServiceClientBuilder::amqp_port),
            (https_port, c2d::ServiceClientBuilder::https_port),
        ] {
            if let Some(p) = port {
                b = set(b, p);
            }
        }
        if let Some(r) = retry {
            b = b.retry(crate::retry::from_option(r)?);
        }
        if let Some(t) = timeout {
            b = b.timeout(seconds("timeout", t)?);
        }
        if let Some(t) = sas_token_ttl {
            b = b.sas_token_ttl(seconds("sas_token_ttl", t)?);
        }
        if let Some(url) = proxy {
            b = b.proxy(c2d::Proxy::parse(url).map_err(to_py)?);
        }
        Ok(ServiceClientOptions { builder: b })
    }

    /// Connects (retrying as the policy says) and returns the client.
    fn connect(&self, py: Python<'_>) -> PyResult<ServiceClient> {
        let client = wait(py, self.builder.clone().connect())?.map_err(to_py)?;
        Ok(ServiceClient { client })
    }

    /// [`connect`](Self::connect), awaitable.
    fn connect_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let builder = self.builder.clone();
        awaitable(py, async move {
            let client = builder.connect().await.map_err(to_py)?;
            Ok(ServiceClient { client })
        })
    }
}

/// A back end's connection to its hub.
#[pyclass(module = "c2d._native", frozen)]
pub struct ServiceClient {
    client: c2d::ServiceClient,
}

/// A message the hub accepted, whose outcome can be waited for.
#[pyclass(module = "c2d._native", frozen)]
pub struct SentMessage {
    sent: c2d::SentMessage,
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

#[pymethods]
impl ServiceClient {
    /// Sends a message (the fields of a `c2d.Message`) to a device; returns once the hub
    /// has accepted it.
    #[pyo3(signature = (device_id, body, ack, ttl, message_id, correlation_id, content_type,
        content_encoding, properties))]
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        py: Python<'_>,
        device_id: &str,
        body: &[u8],
        ack: &str,
        ttl: Option<f64>,
        message_id: Option<String>,
        correlation_id: Option<String>,
        content_type: Option<String>,
        content_encoding: Option<String>,
        properties: Vec<(String, String)>,
    ) -> PyResult<SentMessage> {
        let m = outgoing(
            body.to_vec(),
            ack,
            ttl,
            message_id,
            correlation_id,
            content_type,
            content_encoding,
            properties,
        )?;
        let sent = wait(py, self.client.send(device_id, m))?.map_err(to_py)?;
        Ok(SentMessage { sent })
    }

    /// [`send`](Self::send), awaitable.
    #[pyo3(signature = (device_id, body, ack, ttl, message_id, correlation_id, content_type,
        content_encoding, properties))]
    #[allow(clippy::too_many_arguments)]
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
        body: &[u8],
        ack: &str,
        ttl: Option<f64>,
        message_id: Option<String>,
        correlation_id: Option<String>,
        content_type: Option<String>,
        content_encoding: Option<String>,
        properties: Vec<(String, String)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let m = outgoing(
            body.to_vec(),
            ack,
            ttl,
            message_id,
            correlation_id,
            content_type,
            content_encoding,
            properties,
        )?;
        let client = self.client.clone();
        awaitable(py, async move {
            let sent = client.send(&device_id, m).await.map_err(to_py)?;
            Ok(SentMessage { sent })
        })
    }

    /// Every feedback record from now on.
    fn feedback(&self) -> PyResult<FeedbackReceiver> {
        Ok(FeedbackReceiver::new(
            self.client.feedback().map_err(to_py)?,
        ))
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
        if let Ok(runtime) = c2d::runtime::runtime() {
            let client = self.client.clone();
            runtime.spawn(async move { client.close().await });
        }
    }
}
