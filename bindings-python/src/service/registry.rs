//! The identity registry: devices as IoT Hub's JSON, which `c2d.Device` is made from.

use std::future::Future;

use pyo3::prelude::*;

use c2d::{Device, RegistryClient};

use crate::error::to_py;
use crate::runtime::{awaitable, wait};

/// A device as `(json, connection_string)`: IoT Hub's JSON of the device, and its
/// connection string with the primary key (`None` for a device without a SAS key).
pub type DeviceRecord = (String, Option<String>);

fn device_record(registry: &RegistryClient, d: &Device) -> PyResult<DeviceRecord> {
    let json = serde_json::to_string(d)
        .map_err(|e| to_py(c2d::Error::new(c2d::ErrorKind::Internal, e.to_string())))?;
    Ok((json, d.connection_string(registry.host_name())))
}

/// The registry of a service client's hub.
#[pyclass(module = "c2d._native", frozen)]
pub struct Registry {
    registry: RegistryClient,
}

impl Registry {
    /// The registry `registry` reaches.
    pub fn new(registry: RegistryClient) -> Self {
        Registry { registry }
    }

    // each operation as a future, which the blocking method waits for and the `_async` one
    // makes an awaitable of

    fn created(&self, id: String) -> impl Future<Output = PyResult<DeviceRecord>> + Send {
        let r = self.registry.clone();
        async move { device_record(&r, &r.create_device(&id).await.map_err(to_py)?) }
    }

    fn got(&self, id: String) -> impl Future<Output = PyResult<DeviceRecord>> + Send {
        let r = self.registry.clone();
        async move { device_record(&r, &r.get_device(&id).await.map_err(to_py)?) }
    }

    fn listed(&self, top: u32) -> impl Future<Output = PyResult<Vec<DeviceRecord>>> + Send {
        let r = self.registry.clone();
        async move {
            let list = r.list_devices(top).await.map_err(to_py)?;
            list.iter().map(|d| device_record(&r, d)).collect()
        }
    }

    fn deleted(&self, id: String) -> impl Future<Output = PyResult<()>> + Send {
        let r = self.registry.clone();
        async move { r.delete_device(&id).await.map_err(to_py) }
    }
}

#[pymethods]
impl Registry {
    /// Registers a device with keys the hub generates.
    fn create_device(&self, py: Python<'_>, device_id: String) -> PyResult<DeviceRecord> {
        wait(py, self.created(device_id))?
    }

    /// A device.
    fn get_device(&self, py: Python<'_>, device_id: String) -> PyResult<DeviceRecord> {
        wait(py, self.got(device_id))?
    }

    /// Up to `top` devices.
    #[pyo3(signature = (top = 1000))]
    fn list_devices(&self, py: Python<'_>, top: u32) -> PyResult<Vec<DeviceRecord>> {
        wait(py, self.listed(top))?
    }

    /// Deletes a device and its queue.
    fn delete_device(&self, py: Python<'_>, device_id: String) -> PyResult<()> {
        wait(py, self.deleted(device_id))?
    }

    /// [`create_device`](Self::create_device), awaitable.
    fn create_device_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.created(device_id))
    }

    /// [`get_device`](Self::get_device), awaitable.
    fn get_device_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.got(device_id))
    }

    /// [`list_devices`](Self::list_devices), awaitable.
    #[pyo3(signature = (top = 1000))]
    fn list_devices_async<'py>(&self, py: Python<'py>, top: u32) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.listed(top))
    }

    /// [`delete_device`](Self::delete_device), awaitable.
    fn delete_device_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.deleted(device_id))
    }
}
