//! The device registry, through a service client: create and delete devices.

use std::ffi::c_char;

use c2d_core::{Error, ErrorKind};

use crate::args::{get, owned_string, text, Out};
use crate::error::{c2d_result, call};
use crate::runtime::block_on;
use crate::service::client::c2d_service_client;

/// Registers a device with SAS authentication (keys made by the hub) and returns its
/// connection string.
///
/// @param client A service client whose policy has RegistryWrite.
/// @param device_id The new device's id.
/// @param out_connection_string Receives
///        `HostName=...;DeviceId=...;SharedAccessKey=...`, owned by the caller (free it with
///        `c2d_string_free`).
/// @retval C2D_RESULT_OK The device was created.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the id is not valid, or the device
///         exists already.
/// @retval C2D_RESULT_UNAUTHORIZED The policy lacks RegistryWrite.
/// @retval C2D_RESULT_CLOSED The client was closed.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_client_create_device(
    client: *const c2d_service_client,
    device_id: *const c_char,
    out_connection_string: *mut *mut c_char,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_connection_string, "out_connection_string")?;
        let c = get(client, "client")?;
        let device_id = text(device_id, "device_id")?;
        c.check_open()?;
        let registry = c.client.registry();
        let device = block_on(registry.create_device(device_id))??;
        let cs = device
            .connection_string(registry.host_name())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    "the hub created the device without a symmetric key",
                )
            })?;
        out.write(owned_string(cs)?);
        Ok(())
    })
}

/// Deletes a device, and with it its queue.
///
/// @param client A service client whose policy has RegistryWrite.
/// @param device_id The device.
/// @retval C2D_RESULT_OK The device was deleted.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `device_id` is not UTF-8.
/// @retval C2D_RESULT_DEVICE_NOT_FOUND There is no such device.
/// @retval C2D_RESULT_UNAUTHORIZED The policy lacks RegistryWrite.
/// @retval C2D_RESULT_CLOSED The client was closed.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_client_delete_device(
    client: *const c2d_service_client,
    device_id: *const c_char,
) -> c2d_result {
    call(|| {
        let c = get(client, "client")?;
        let device_id = text(device_id, "device_id")?;
        c.check_open()?;
        block_on(c.client.registry().delete_device(device_id))?
    })
}
