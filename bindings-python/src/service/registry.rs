//! The identity registry: devices as IoT Hub's JSON, which `c2d.Device` is made from.

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
}

#[pymethods]
impl Registry {
    /// Registers a device with keys the hub generates.
    fn create_device(&self, py: Python<'_>, device_id: &str) -> PyResult<DeviceRecord> {
        let d = wait(py, self.registry.create_device(device_id))?.map_err(to_py)?;
        device_record(&self.registry, &d)
    }

    /// A device.
    fn get_device(&self, py: Python<'_>, device_id: &str) -> PyResult<DeviceRecord> {
        let d = wait(py, self.registry.get_device(device_id))?.map_err(to_py)?;
        device_record(&self.registry, &d)
    }

    /// Up to `top` devices.
    #[pyo3(signature = (top = 1000))]
    fn list_devices(&self, py: Python<'_>, top: u32) -> PyResult<Vec<DeviceRecord>> {
        let list = wait(py, self.registry.list_devices(top))?.map_err(to_py)?;
        list.iter()
            .map(|d| device_record(&self.registry, d))
            .collect()
    }

    /// Deletes a device and its queue.
    fn delete_device(&self, py: Python<'_>, device_id: &str) -> PyResult<()> {
        wait(py, self.registry.delete_device(device_id))?.map_err(to_py)
    }

    /// [`create_device`](Self::create_device), awaitable.
    fn create_device_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry.clone();
        awaitable(py, async move {
            let d = registry.create_device(&device_id).await.map_err(to_py)?;
            device_record(&registry, &d)
        })
    }

    /// [`get_device`](Self::get_device), awaitable.
    fn get_device_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry.clone();
        awaitable(py, async move {
            let d = registry.get_device(&device_id).await.map_err(to_py)?;
            device_record(&registry, &d)
        })
    }

    /// [`list_devices`](Self::list_devices), awaitable.
    #[pyo3(signature = (top = 1000))]
    fn list_devices_async<'py>(&self, py: Python<'py>, top: u32) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry.clone();
        awaitable(py, async move {
            let list = registry.list_devices(top).await.map_err(to_py)?;
            list.iter()
                .map(|d| device_record(&registry, d))
                .collect::<PyResult<Vec<_>>>()
        })
    }

    /// [`delete_device`](Self::delete_device), awaitable.
    fn delete_device_async<'py>(
        &self,
        py: Python<'py>,
        device_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry.clone();
        awaitable(py, async move {
            registry.delete_device(&device_id).await.map_err(to_py)
        })
    }
}
