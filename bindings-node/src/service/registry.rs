//! The identity registry: devices as IoT Hub's JSON, which the package's `Device` is made
//! from.

use napi::bindgen_prelude::Object;
use napi::{Env, Result};
use napi_derive::napi;

use c2d::{Device, RegistryClient};

use crate::runtime::{abortable, Abort};

/// A device: IoT Hub's JSON of it, and its connection string with the primary key (absent for
/// a device without a SAS key).
#[napi(object)]
pub struct DeviceRecord {
    /// IoT Hub's JSON of the device.
    pub json: String,
    /// The connection string with the primary key.
    pub connection_string: Option<String>,
}

fn device_record(registry: &RegistryClient, d: &Device) -> c2d::Result<DeviceRecord> {
    let json = serde_json::to_string(d)
        .map_err(|e| c2d::Error::new(c2d::ErrorKind::Internal, e.to_string()))?;
    Ok(DeviceRecord {
        json,
        connection_string: d.connection_string(registry.host_name()),
    })
}

/// The registry of a service client's hub.
#[napi]
pub struct Registry {
    registry: RegistryClient,
}

impl Registry {
    /// The registry `registry` reaches.
    pub fn new(registry: RegistryClient) -> Self {
        Registry { registry }
    }
}

#[napi]
impl Registry {
    /// Registers a device with keys the hub generates.
    #[napi(ts_return_type = "Promise<DeviceRecord>")]
    pub fn create_device<'env>(
        &self,
        env: &'env Env,
        device_id: String,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let registry = self.registry.clone();
        abortable(env, abort, async move {
            let d = registry.create_device(&device_id).await?;
            device_record(&registry, &d)
        })
    }

    /// A device.
    #[napi(ts_return_type = "Promise<DeviceRecord>")]
    pub fn get_device<'env>(
        &self,
        env: &'env Env,
        device_id: String,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let registry = self.registry.clone();
        abortable(env, abort, async move {
            let d = registry.get_device(&device_id).await?;
            device_record(&registry, &d)
        })
    }

    /// Up to `top` devices.
    #[napi(ts_return_type = "Promise<DeviceRecord[]>")]
    pub fn list_devices<'env>(
        &self,
        env: &'env Env,
        top: u32,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let registry = self.registry.clone();
        abortable(env, abort, async move {
            let list = registry.list_devices(top).await?;
            list.iter()
                .map(|d| device_record(&registry, d))
                .collect::<c2d::Result<Vec<_>>>()
        })
    }

    /// Deletes a device and its queue.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete_device<'env>(
        &self,
        env: &'env Env,
        device_id: String,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let registry = self.registry.clone();
        abortable(env, abort, async move {
            registry.delete_device(&device_id).await
        })
    }
}
