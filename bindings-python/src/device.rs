//! The device client: connect, receive, close; what it is connected with.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use c2d::{Error, ErrorKind, Transport};

use crate::error::to_py;
use crate::message::ReceivedMessage;
use crate::runtime::{awaitable, seconds, wait, wait_for};
use crate::status::{status, Status, StatusChanges};

/// The engine's transport of its Python name (`Transport`'s values are the engine's names).
fn transport(name: &str) -> PyResult<Transport> {
    name.parse().map_err(to_py)
}

/// The PEM of a `trusted_ca=` (text or bytes) or `trusted_ca_file=` option.
pub fn trusted_ca_pem(
    pem: Option<&Bound<'_, PyAny>>,
    file: Option<std::path::PathBuf>,
) -> PyResult<Option<Vec<u8>>> {
    pem_option("trusted_ca", pem, file)
}

/// The PEM of a `{name}=` (text or bytes) or `{name}_file=` option.
fn pem_option(
    name: &str,
    pem: Option<&Bound<'_, PyAny>>,
    file: Option<std::path::PathBuf>,
) -> PyResult<Option<Vec<u8>>> {
    match (pem, file) {
        (Some(_), Some(_)) => Err(to_py(Error::invalid_argument(format!(
            "give {name} or {name}_file, not both"
        )))),
        (Some(pem), None) => {
            if let Ok(s) = pem.cast::<PyString>() {
                Ok(Some(s.to_cow()?.as_bytes().to_vec()))
            } else if let Ok(b) = pem.cast::<PyBytes>() {
                Ok(Some(b.as_bytes().to_vec()))
            } else {
                Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "{name} must be PEM text (str) or bytes"
                )))
            }
        }
        (None, Some(path)) => std::fs::read(&path).map(Some).map_err(|e| {
            to_py(Error::invalid_argument(format!(
                "reading {name}_file {}: {e}",
                path.display()
            )))
        }),
        (None, None) => Ok(None),
    }
}

/// A device's connection to its hub.
#[pyclass(module = "c2d._native", frozen)]
pub struct DeviceClient {
    client: c2d::DeviceClient,
}

/// The options of a device client, checked: `connect()` or `connect_async()` them.
#[pyclass(module = "c2d._native", frozen)]
pub struct DeviceClientOptions {
    builder: c2d::DeviceClientBuilder,
}

#[pymethods]
impl DeviceClientOptions {
    /// Reads the connection string and the options.
    #[new]
    #[pyo3(signature = (connection_string, *, transport = "mqtt", trusted_ca = None,
        trusted_ca_file = None, port = None, mqtt_port = None, amqp_port = None,
        https_port = None, retry = None, timeout = None, sas_token_ttl = None, in_flight = None,
        poll_interval = None, cert = None, cert_file = None, key = None, key_file = None,
        proxy = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        connection_string: &str,
        transport: &str,
        trusted_ca: Option<&Bound<'_, PyAny>>,
        trusted_ca_file: Option<std::path::PathBuf>,
        port: Option<u16>,
        mqtt_port: Option<u16>,
        amqp_port: Option<u16>,
        https_port: Option<u16>,
        retry: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        sas_token_ttl: Option<f64>,
        in_flight: Option<u16>,
        poll_interval: Option<f64>,
        cert: Option<&Bound<'_, PyAny>>,
        cert_file: Option<std::path::PathBuf>,
        key: Option<&Bound<'_, PyAny>>,
        key_file: Option<std::path::PathBuf>,
        proxy: Option<&str>,
    ) -> PyResult<Self> {
        let mut b = c2d::DeviceClient::builder(connection_string)
            .map_err(to_py)?
            .transport(self::transport(transport)?);
        if let Some(pem) = trusted_ca_pem(trusted_ca, trusted_ca_file)? {
            b = b.trusted_ca_pem(pem);
        }
        for (port, set) in [
            (port, c2d::DeviceClientBuilder::port as fn(_, _) -> _),
            (mqtt_port, c2d::DeviceClientBuilder::mqtt_port),
            (amqp_port, c2d::DeviceClientBuilder::amqp_port),
            (https_port, c2d::DeviceClientBuilder::https_port),
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
        if let Some(n) = in_flight {
            b = b.in_flight(n);
        }
        if let Some(i) = poll_interval {
            b = b.poll_interval(seconds("poll_interval", i)?);
        }
        match (
            pem_option("cert", cert, cert_file)?,
            pem_option("key", key, key_file)?,
        ) {
            (Some(cert), Some(key)) => b = b.client_certificate(cert, key),
            (None, None) => {}
            _ => {
                return Err(to_py(Error::invalid_argument(
                    "give the device's certificate and its key together (cert and key)",
                )))
            }
        }
        if let Some(url) = proxy {
            b = b.proxy(c2d::Proxy::parse(url).map_err(to_py)?);
        }
        Ok(DeviceClientOptions { builder: b })
    }

    /// Connects (retrying as the policy says) and returns the client.
    fn connect(&self, py: Python<'_>) -> PyResult<DeviceClient> {
        let client = wait(py, self.builder.clone().connect())?.map_err(to_py)?;
        Ok(DeviceClient { client })
    }

    /// [`connect`](Self::connect), awaitable.
    fn connect_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let builder = self.builder.clone();
        awaitable(py, async move {
            let client = builder.connect().await.map_err(to_py)?;
            Ok(DeviceClient { client })
        })
    }
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
        match wait_for(py, timeout, self.client.recv())? {
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
        if let Ok(runtime) = c2d::runtime::runtime() {
            let client = self.client.clone();
            runtime.spawn(async move { client.close().await });
        }
    }
}
