//! A local hub in the process, for tests: `c2d.testing.LocalHub`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use c2d::{Error, ErrorKind};
use c2d_hub::{Endpoints, HubConfig, LocalHub as Hub, ManualClock};

use crate::error::to_py;
use crate::runtime::{seconds, wait};

/// A running hub on free ports, its data in a directory of its own (temporary unless one
/// is given), stopped by `stop()` or when collected.
#[pyclass(module = "c2d._native", frozen)]
pub struct LocalHub {
    hub: Mutex<Option<Hub>>,
    clock: Option<Arc<ManualClock>>,
    /// The temporary data directory, removed when the hub is dropped.
    _temp: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    endpoints: Endpoints,
}

/// The hub's throttling for a `tier=` (`None`: none), `units=` and `throttle_backlog=`.
fn throttling(
    tier: Option<&str>,
    units: u32,
    backlog: Option<f64>,
) -> PyResult<Option<c2d_hub::Throttling>> {
    let backlog = backlog
        .map(|b| seconds("throttle_backlog", b))
        .transpose()?;
    c2d_hub::Throttling::from_options(tier, Some(units), backlog).map_err(to_py)
}

fn stopped() -> PyErr {
    to_py(Error::new(ErrorKind::Closed, "the hub was stopped"))
}

#[pymethods]
impl LocalHub {
    /// Starts a hub with IoT Hub's rules unless told otherwise (times in seconds).
    #[new]
    #[pyo3(signature = (*, data_dir = None, manual_clock = false, max_queue_depth = None,
        max_message_size = None, default_ttl = None, lock_timeout = None,
        max_delivery_count = None, feedback_interval = None, durability = "fsync", tier = None,
        units = 1, throttle_backlog = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        data_dir: Option<PathBuf>,
        manual_clock: bool,
        max_queue_depth: Option<usize>,
        max_message_size: Option<usize>,
        default_ttl: Option<f64>,
        lock_timeout: Option<f64>,
        max_delivery_count: Option<u32>,
        feedback_interval: Option<f64>,
        durability: &str,
        tier: Option<&str>,
        units: u32,
        throttle_backlog: Option<f64>,
    ) -> PyResult<Self> {
        let temp = match data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().map_err(|e| {
                to_py(Error::new(
                    ErrorKind::Internal,
                    format!("making a temporary directory: {e}"),
                ))
            })?),
        };
        let data_dir = match (&temp, data_dir) {
            (Some(t), _) => t.path().to_path_buf(),
            (None, Some(d)) => d,
            (None, None) => unreachable!("a data directory is given or made"),
        };
        let mut config = HubConfig::ephemeral(&data_dir);
        let limits = &mut config.limits;
        if let Some(n) = max_queue_depth {
            limits.max_queue_depth = n;
        }
        if let Some(n) = max_message_size {
            limits.max_message_size = n;
        }
        if let Some(n) = max_delivery_count {
            limits.max_delivery_count = n;
        }
        if let Some(t) = default_ttl {
            limits.default_ttl = seconds("default_ttl", t)?;
        }
        if let Some(t) = lock_timeout {
            limits.lock_timeout = seconds("lock_timeout", t)?;
        }
        if let Some(t) = feedback_interval {
            limits.feedback_interval = seconds("feedback_interval", t)?;
        }
        config.durability = durability.parse().map_err(to_py)?;
        config.throttling = throttling(tier, units, throttle_backlog)?;
        let clock = manual_clock.then(|| config.use_manual_clock());
        let hub = wait(py, Hub::start(config))?.map_err(|e| to_py(e.into()))?;
        Ok(LocalHub {
            clock,
            _temp: temp,
            data_dir,
            endpoints: hub.endpoints(),
            hub: Mutex::new(Some(hub)),
        })
    }

    /// The host name in the hub's connection strings.
    #[getter]
    fn host_name(&self) -> &str {
        &self.endpoints.host_name
    }

    /// The MQTT port.
    #[getter]
    fn mqtt_port(&self) -> u16 {
        self.endpoints.mqtt_port
    }

    /// The AMQP port.
    #[getter]
    fn amqp_port(&self) -> u16 {
        self.endpoints.amqp_port
    }

    /// The HTTPS (and WebSocket) port.
    #[getter]
    fn https_port(&self) -> u16 {
        self.endpoints.https_port
    }

    /// The PEM of the hub's development CA, which clients must trust.
    #[getter]
    fn ca_pem(&self) -> &str {
        &self.endpoints.ca_pem
    }

    /// The file holding that CA.
    #[getter]
    fn ca_file(&self) -> PathBuf {
        self.endpoints.ca_path.clone()
    }

    /// The data directory.
    #[getter]
    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    /// The `service` policy's connection string (send, feedback, purge).
    #[getter]
    fn service_connection_string(&self) -> &str {
        &self.endpoints.service_connection_string
    }

    /// The `iothubowner` policy's connection string (everything, the registry too).
    #[getter]
    fn owner_connection_string(&self) -> &str {
        &self.endpoints.owner_connection_string
    }

    /// The address of the hub's live page with the token that opens it (new at every start);
    /// the token also reads `/metrics` as a bearer token.
    #[getter]
    fn ui_url(&self) -> &str {
        &self.endpoints.ui_url
    }

    /// Registers a device; returns its connection string.
    fn create_device(&self, py: Python<'_>, device_id: &str) -> PyResult<String> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        let hub = guard.as_ref().ok_or_else(stopped)?;
        wait(py, hub.create_sas_device(device_id))?.map_err(to_py)
    }

    /// Registers an X.509 device with a new self-signed certificate; returns its connection
    /// string, the certificate and its key (PEM).
    fn create_x509_device(
        &self,
        py: Python<'_>,
        device_id: &str,
    ) -> PyResult<(String, String, String)> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        let hub = guard.as_ref().ok_or_else(stopped)?;
        let (cs, cert) = wait(py, hub.create_x509_device(device_id))?.map_err(to_py)?;
        Ok((cs, cert.cert_pem, cert.key_pem))
    }

    /// How many messages are queued for a device (locked ones included).
    fn queue_depth(&self, device_id: &str) -> PyResult<usize> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard.as_ref().ok_or_else(stopped)?.queue_depth(device_id))
    }

    /// Throttles as IoT Hub of `tier` with `units` from now on (`tier=None`: no longer).
    #[pyo3(signature = (tier, units = 1, backlog = None))]
    fn set_throttling(&self, tier: Option<&str>, units: u32, backlog: Option<f64>) -> PyResult<()> {
        let throttling = throttling(tier, units, backlog)?;
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .ok_or_else(stopped)?
            .set_throttling(throttling);
        Ok(())
    }

    /// Requests refused for `reason` since the hub started (`throttled`, …).
    fn refusals(&self, reason: &str) -> PyResult<u64> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard.as_ref().ok_or_else(stopped)?.refusals(reason))
    }

    /// Applies a fault given as JSON (`c2d.testing.Faults` builds it); returns how many
    /// connections it dropped or locks it ended.
    fn apply_fault(&self, fault: &str) -> PyResult<usize> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        let hub = guard.as_ref().ok_or_else(stopped)?;
        hub.faults().apply_json(fault).map_err(|e| to_py(e.into()))
    }

    /// The faults in force, as JSON.
    fn active_faults(&self) -> PyResult<String> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard.as_ref().ok_or_else(stopped)?.faults().active_json())
    }

    /// Ends every fault in force.
    fn clear_faults(&self) -> PyResult<()> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().ok_or_else(stopped)?.faults().clear();
        Ok(())
    }

    /// Acknowledgements lost to faults since the hub started.
    fn acks_lost(&self) -> PyResult<u64> {
        let guard = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard.as_ref().ok_or_else(stopped)?.faults().acks_lost())
    }

    /// Moves the hub's manual clock forward by `seconds` (TTL and lock expiry without
    /// sleeping); the hub must have been started with `manual_clock=True`.
    fn advance_clock(&self, by: f64) -> PyResult<()> {
        let by = seconds("seconds", by)?;
        match &self.clock {
            Some(c) => {
                c.advance(by);
                Ok(())
            }
            None => Err(to_py(Error::invalid_argument(
                "this hub keeps real time: start it with manual_clock=True",
            ))),
        }
    }

    /// Stops the hub (its clients see the connection end). Stopping twice does nothing.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let hub = self.hub.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(hub) = hub {
            wait(py, hub.stop())?;
        }
        Ok(())
    }
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        let hub = self.hub.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let (Some(hub), Ok(runtime)) = (hub, c2d::runtime::runtime()) {
            // not from a runtime thread: block_on would panic there; and without the GIL, so
            // that engine threads calling into Python meanwhile are not held up
            if tokio::runtime::Handle::try_current().is_err() {
                Python::attach(|py| py.detach(|| runtime.block_on(hub.stop())));
            }
        }
    }
}
