//! The options of both clients, as Python gives them (the keyword arguments of
//! `DeviceClient.connect` and `ServiceClient.connect`), made the engine's
//! [`c2d::DeviceOptions`] or [`c2d::ServiceOptions`], whose checks are the engine's.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use c2d::{ClientCertificate, ConnectionOptions, DeviceOptions, Pem, ServiceOptions};

use crate::device::DeviceClient;
use crate::error::to_py;
use crate::runtime::{awaitable, opt_seconds, wait};
use crate::service::client::ServiceClient;

/// The PEM of an option given as text or bytes.
fn pem_bytes(name: &str, pem: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<u8>>> {
    let Some(pem) = pem else { return Ok(None) };
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

/// The `{name}=` (text or bytes) or `{name}_file=` option.
fn pem(
    name: &str,
    text: Option<&Bound<'_, PyAny>>,
    file: Option<std::path::PathBuf>,
) -> PyResult<Option<Pem>> {
    Pem::either(name, pem_bytes(name, text)?, file).map_err(to_py)
}

/// A client's connection string and options, read: connect a device or a service with them.
#[pyclass(module = "c2d._native", frozen)]
pub struct ClientOptions {
    connection_string: String,
    transport: Option<String>,
    device: DeviceOptions,
}

#[pymethods]
impl ClientOptions {
    /// Reads the options (a service client has no use for the device's own: `mqtt_port`,
    /// `in_flight`, `poll_interval`, `cert`, `key`).
    #[new]
    #[pyo3(signature = (connection_string, *, transport = None, trusted_ca = None,
        trusted_ca_file = None, port = None, mqtt_port = None, amqp_port = None,
        https_port = None, retry = None, timeout = None, sas_token_ttl = None, in_flight = None,
        poll_interval = None, cert = None, cert_file = None, key = None, key_file = None,
        proxy = None, suppress_duplicates = false, duplicates_file = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        connection_string: String,
        transport: Option<String>,
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
        suppress_duplicates: bool,
        duplicates_file: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let (c, d) = (ConnectionOptions::default(), DeviceOptions::default());
        let connection = ConnectionOptions {
            trusted_ca: pem("trusted_ca", trusted_ca, trusted_ca_file)?,
            port,
            amqp_port,
            https_port,
            retry: retry
                .map(crate::retry::from_option)
                .transpose()?
                .unwrap_or(c.retry),
            timeout: opt_seconds("timeout", timeout)?.unwrap_or(c.timeout),
            sas_token_ttl: opt_seconds("sas_token_ttl", sas_token_ttl)?.unwrap_or(c.sas_token_ttl),
            proxy: proxy.map(c2d::Proxy::parse).transpose().map_err(to_py)?,
        };
        let device = DeviceOptions {
            connection,
            mqtt_port,
            in_flight: in_flight.unwrap_or(d.in_flight),
            poll_interval: opt_seconds("poll_interval", poll_interval)?.unwrap_or(d.poll_interval),
            client_certificate: ClientCertificate::pair(
                pem("cert", cert, cert_file)?,
                pem("key", key, key_file)?,
            )
            .map_err(to_py)?,
            duplicates: c2d::DuplicateOptions::from_options(suppress_duplicates, duplicates_file),
            ..d
        };
        Ok(ClientOptions {
            connection_string,
            transport,
            device,
        })
    }

    /// Connects a device (retrying as the policy says).
    fn connect_device(&self, py: Python<'_>) -> PyResult<DeviceClient> {
        let builder = self.device_builder()?;
        let client = wait(py, builder.connect())?.map_err(to_py)?;
        Ok(DeviceClient { client })
    }

    /// [`connect_device`](Self::connect_device), awaitable.
    fn connect_device_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let builder = self.device_builder()?;
        awaitable(py, async move {
            let client = builder.connect().await.map_err(to_py)?;
            Ok(DeviceClient { client })
        })
    }

    /// Connects a service (retrying as the policy says).
    fn connect_service(&self, py: Python<'_>) -> PyResult<ServiceClient> {
        let builder = self.service_builder()?;
        let client = wait(py, builder.connect())?.map_err(to_py)?;
        Ok(ServiceClient { client })
    }

    /// [`connect_service`](Self::connect_service), awaitable.
    fn connect_service_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let builder = self.service_builder()?;
        awaitable(py, async move {
            let client = builder.connect().await.map_err(to_py)?;
            Ok(ServiceClient { client })
        })
    }
}

impl ClientOptions {
    fn device_builder(&self) -> PyResult<c2d::DeviceClientBuilder> {
        let options = DeviceOptions {
            transport: self
                .transport
                .as_deref()
                .unwrap_or("mqtt")
                .parse()
                .map_err(to_py)?,
            ..self.device.clone()
        };
        let builder = c2d::DeviceClient::builder(&self.connection_string).map_err(to_py)?;
        Ok(builder.options(options))
    }

    fn service_builder(&self) -> PyResult<c2d::ServiceClientBuilder> {
        let options = ServiceOptions {
            transport: self
                .transport
                .as_deref()
                .unwrap_or("amqp")
                .parse()
                .map_err(to_py)?,
            connection: self.device.connection.clone(),
        };
        let builder = c2d::ServiceClient::builder(&self.connection_string).map_err(to_py)?;
        Ok(builder.options(options))
    }
}
