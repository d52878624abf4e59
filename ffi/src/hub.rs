//! A local IoT-Hub-compatible hub in the process, for tests and for running without a cloud.

use std::ffi::{c_char, CString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::c2d_hub::{Durability, Fault, HubConfig, LocalHub, ManualClock, SendRefusal};
use c2d_core::{Error, ErrorKind};

use crate::args::{from_handle, get, into_handle, owned_string, set_option, text, Out};
use crate::error::{c2d_result, call, call_infallible, invalid};
use crate::runtime::block_on;

/// How the hub's store commits.
pub type c2d_durability = u32;
/// Every commit waits for the disk (`fsync`): an accepted message survives a crash and a
/// power loss. The default.
pub const C2D_DURABILITY_FSYNC: c2d_durability = 0;
/// Commits reach the OS, not the disk: an accepted message survives a crash of the hub, not a
/// power loss; faster.
pub const C2D_DURABILITY_OS: c2d_durability = 1;

/// Options for `c2d_hub_start`: made by `c2d_hub_options_new`, changed by the setters,
/// copied by `c2d_hub_start`, freed by `c2d_hub_options_free`.
pub struct c2d_hub_options {
    config: HubConfig,
    manual_clock: bool,
}

/// Makes hub options with IoT Hub's defaults: data in `./.c2d-hub`, host `localhost`, ports
/// 8883 (MQTT), 5671 (AMQP) and 443 (HTTPS and WebSockets) on 127.0.0.1, queue depth 50,
/// 64 KB messages, lock 60 s, TTL 1 h, 10 deliveries, feedback batched every 15 s.
///
/// @param out_options Receives the options, owned by the caller (free them with
///                    `c2d_hub_options_free`).
/// @retval C2D_RESULT_OK The options were made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_options_new(out_options: *mut *mut c2d_hub_options) -> c2d_result {
    call(|| {
        Out::new(out_options, "out_options")?.write(into_handle(c2d_hub_options {
            config: HubConfig::new(".c2d-hub"),
            manual_clock: false,
        }));
        Ok(())
    })
}

/// Frees hub options.
///
/// @param options The options, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once per options object.
#[no_mangle]
pub extern "C" fn c2d_hub_options_free(options: *mut c2d_hub_options) {
    // SAFETY: the options came from c2d_hub_options_new (the C contract).
    call_infallible(|| drop(unsafe { from_handle(options) }))
}

/// Sets the data directory: the store (`hub.db`), the dev CA (`ca.pem`) and the policies
/// live there, and survive restarts. Created if missing.
///
/// @param options The options.
/// @param path The directory (copied).
/// @retval C2D_RESULT_OK The directory was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `path` is not UTF-8.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_options_set_data_dir(
    options: *mut c2d_hub_options,
    path: *const c_char,
) -> c2d_result {
    set_option(options, |o| {
        o.config.data_dir = PathBuf::from(text(path, "path")?);
        Ok(())
    })
}

/// Sets the three ports; 0 lets the system choose a free one (read it back with
/// `c2d_hub_mqtt_port` and the like).
///
/// @param options The options.
/// @param mqtt_port MQTT over TLS (IoT Hub: 8883).
/// @param amqp_port AMQP over TLS (IoT Hub: 5671).
/// @param https_port HTTPS, MQTT and AMQP over WebSockets (IoT Hub: 443).
/// @retval C2D_RESULT_OK The ports were set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_options_set_ports(
    options: *mut c2d_hub_options,
    mqtt_port: u16,
    amqp_port: u16,
    https_port: u16,
) -> c2d_result {
    set_option(options, |o| {
        o.config.mqtt_port = mqtt_port;
        o.config.amqp_port = amqp_port;
        o.config.https_port = https_port;
        Ok(())
    })
}

/// Sets how the store commits (`C2D_DURABILITY_FSYNC` by default).
///
/// @param options The options.
/// @param durability One of the `C2D_DURABILITY_*` values.
/// @retval C2D_RESULT_OK The durability was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `durability` is not one.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_options_set_durability(
    options: *mut c2d_hub_options,
    durability: c2d_durability,
) -> c2d_result {
    set_option(options, |o| {
        o.config.durability = match durability {
            C2D_DURABILITY_FSYNC => Durability::Fsync,
            C2D_DURABILITY_OS => Durability::Os,
            other => return Err(invalid(format!("{other} is not a c2d_durability"))),
        };
        Ok(())
    })
}

/// Sets the queue rules that differ between tests most often.
///
/// @param options The options.
/// @param max_queue_depth Messages a device's queue holds; the next send fails with
///        `C2D_RESULT_QUEUE_FULL` (IoT Hub: 50).
/// @param max_message_size Bytes of body and properties a message may have (IoT Hub: 65536).
/// @param max_delivery_count Abandons after which a message is dead-lettered with
///        `DeliveryCountExceeded` (IoT Hub: 10).
/// @param feedback_interval_ms How long the hub gathers feedback records into one batch
///        (IoT Hub: 15000; 0 sends each at once).
/// @retval C2D_RESULT_OK The limits were set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL, or a count or size is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_options_set_limits(
    options: *mut c2d_hub_options,
    max_queue_depth: u32,
    max_message_size: u32,
    max_delivery_count: u32,
    feedback_interval_ms: u32,
) -> c2d_result {
    set_option(options, |o| {
        if max_queue_depth == 0 || max_message_size == 0 || max_delivery_count == 0 {
            return Err(invalid(
                "max_queue_depth, max_message_size and max_delivery_count must be at least 1",
            ));
        }
        let limits = &mut o.config.limits;
        limits.max_queue_depth = max_queue_depth as usize;
        limits.max_message_size = max_message_size as usize;
        limits.max_delivery_count = max_delivery_count;
        limits.feedback_interval = Duration::from_millis(feedback_interval_ms.into());
        Ok(())
    })
}

/// Runs the hub on a manual clock that stands still until `c2d_hub_advance_clock` moves it:
/// tests can then pass TTLs and lock timeouts without sleeping. Feedback batching follows the
/// clock too: a feedback record made within the feedback interval of the previous batch
/// (15 s by default) goes out only once the clock is advanced past that interval.
///
/// @param options The options.
/// @retval C2D_RESULT_OK The hub will use a manual clock.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_options_use_manual_clock(options: *mut c2d_hub_options) -> c2d_result {
    set_option(options, |o| {
        o.manual_clock = true;
        Ok(())
    })
}

/// Makes the hub throttle as an IoT hub of `tier` with `units` units: C2D sends, HTTPS
/// receives and registry operations at the tier's rates (S1: 100 sends, 1 000 receives and
/// 100 registry operations a minute a unit; S3: fifty times that), a request over the rate
/// held up to `backlog_ms`, then refused with IoT Hub's throttling error
/// (`C2D_RESULT_THROTTLED` to c2d's clients). Off by default.
///
/// @param options The options.
/// @param tier A `C2D_TIER_*`.
/// @param units 1 to the tier's most (F1: 1; S1, S2: 200; S3: 10).
/// @param backlog_ms How long a request waits its turn at most (IoT Hub does not say; 1 000
///                   is c2d's default).
/// @retval C2D_RESULT_OK The hub will throttle.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL, or the tier has no such units.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_options_set_tier(
    options: *mut c2d_hub_options,
    tier: crate::service::fanout::c2d_tier,
    units: u32,
    backlog_ms: u32,
) -> c2d_result {
    set_option(options, |o| {
        let tier = crate::service::fanout::tier_of(tier)?;
        o.config.throttling = Some(
            ::c2d_hub::Throttling::new(tier, units)?
                .backlog(Duration::from_millis(u64::from(backlog_ms))),
        );
        Ok(())
    })
}

/// A running local hub. Made by `c2d_hub_start`, stopped by `c2d_hub_stop`, freed by
/// `c2d_hub_free`. Every function may be called from any thread, except `_free`, which must
/// be the last call.
pub struct c2d_hub {
    hub: Mutex<Option<LocalHub>>,
    clock: Option<Arc<ManualClock>>,
    /// The texts `c2d_hub_text` gives, by their `c2d_hub_text_kind`.
    texts: Vec<CString>,
    ports: (u16, u16, u16),
}

fn c_string(s: impl Into<Vec<u8>>) -> c2d_core::Result<CString> {
    CString::new(s).map_err(|_| invalid("text holds a NUL byte"))
}

/// Starts a hub: opens (or creates) its data directory, makes its dev CA and server
/// certificate on first start, and listens. Creates the policies `iothubowner`, `service`,
/// `registryReadWrite` and `device` on first start.
///
/// @param options Options, or NULL for the defaults (see `c2d_hub_options_new`). Copied.
/// @param out_hub Receives the hub, owned by the caller (free it with `c2d_hub_free`).
/// @retval C2D_RESULT_OK The hub is serving.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_hub` is NULL.
/// @retval C2D_RESULT_UNAVAILABLE A port is taken or cannot be bound.
/// @retval C2D_RESULT_INTERNAL The data directory, store or certificates could not be opened
///         or made (the last error message says which).
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_start(
    options: *const c2d_hub_options,
    out_hub: *mut *mut c2d_hub,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_hub, "out_hub")?;
        // SAFETY: NULL means the defaults; otherwise options from c2d_hub_options_new.
        let (mut config, manual) = match unsafe { options.as_ref() } {
            Some(o) => (o.config.clone(), o.manual_clock),
            None => (HubConfig::new(".c2d-hub"), false),
        };
        let clock = manual.then(|| config.use_manual_clock());
        let hub = block_on(LocalHub::start(config))??;
        let e = hub.endpoints();
        // in the order of the C2D_HUB_TEXT_* values
        let texts = [
            e.host_name,
            e.ca_pem,
            e.ca_path.display().to_string(),
            e.service_connection_string,
            e.owner_connection_string,
            e.ui_url,
        ];
        let handle = c2d_hub {
            clock,
            texts: texts.into_iter().map(c_string).collect::<Result<_, _>>()?,
            ports: (e.mqtt_port, e.amqp_port, e.https_port),
            hub: Mutex::new(Some(hub)),
        };
        out.write(into_handle(handle));
        Ok(())
    })
}

/// Reads the hub's ports (the chosen ones, where the options said 0).
///
/// @param hub The hub.
/// @param out_mqtt_port Receives the MQTT port.
/// @param out_amqp_port Receives the AMQP port.
/// @param out_https_port Receives the HTTPS / WebSocket port.
/// @retval C2D_RESULT_OK The ports were read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_ports(
    hub: *const c2d_hub,
    out_mqtt_port: *mut u16,
    out_amqp_port: *mut u16,
    out_https_port: *mut u16,
) -> c2d_result {
    call(|| {
        let mqtt = Out::new(out_mqtt_port, "out_mqtt_port")?;
        let amqp = Out::new(out_amqp_port, "out_amqp_port")?;
        let https = Out::new(out_https_port, "out_https_port")?;
        let (m, a, h) = get(hub, "hub")?.ports;
        mqtt.write(m);
        amqp.write(a);
        https.write(h);
        Ok(())
    })
}

/// What `c2d_hub_text` reads.
pub type c2d_hub_text_kind = u32;
/// The host name clients must dial (and that the certificate names): `localhost`.
pub const C2D_HUB_TEXT_HOST_NAME: c2d_hub_text_kind = 0;
/// The dev CA certificate, PEM: give it to `c2d_*_options_set_trusted_ca_pem`.
pub const C2D_HUB_TEXT_CA_PEM: c2d_hub_text_kind = 1;
/// The path of the dev CA file (`ca.pem` in the data directory).
pub const C2D_HUB_TEXT_CA_PATH: c2d_hub_text_kind = 2;
/// The connection string of the `service` policy (ServiceConnect: send, feedback, purge).
pub const C2D_HUB_TEXT_SERVICE_CONNECTION_STRING: c2d_hub_text_kind = 3;
/// The connection string of the `iothubowner` policy (every right, registry writes too).
pub const C2D_HUB_TEXT_OWNER_CONNECTION_STRING: c2d_hub_text_kind = 4;
/// The address of the hub's live page (devices, queues, feedback) with the token that opens
/// it, new at every start: `https://localhost:{port}/ui/?token=…`. The token also reads
/// `/metrics` as `Authorization: Bearer {token}`.
pub const C2D_HUB_TEXT_UI_URL: c2d_hub_text_kind = 5;

/// Reads one of the hub's texts: host name, CA, connection strings, the live page's address.
///
/// @param hub The hub.
/// @param kind One of the `C2D_HUB_TEXT_*` values.
/// @param out_text Receives the text, NUL-terminated and owned by the hub (valid until
///                 `c2d_hub_free`).
/// @retval C2D_RESULT_OK The text was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `kind` is not one of them.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_text(
    hub: *const c2d_hub,
    kind: c2d_hub_text_kind,
    out_text: *mut *const c_char,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_text, "out_text")?;
        let h = get(hub, "hub")?;
        let text = usize::try_from(kind).ok().and_then(|k| h.texts.get(k));
        let text = text.ok_or_else(|| invalid(format!("{kind} is not a c2d_hub_text_kind")))?;
        out.write(text.as_ptr());
        Ok(())
    })
}

impl c2d_hub {
    /// Stops the hub if it is running.
    fn stop(&self) -> c2d_core::Result<()> {
        let running = self.hub.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = running {
            block_on(h.stop())?;
        }
        Ok(())
    }

    /// Runs `f` on the running hub; `Closed` once it was stopped.
    fn with<T>(&self, f: impl FnOnce(&LocalHub) -> c2d_core::Result<T>) -> c2d_core::Result<T> {
        let hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        f(hub
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Closed, "the hub was stopped"))?)
    }
}

/// Registers a device (as the REST registry would) and returns its connection string.
///
/// @param hub The hub.
/// @param device_id The new device's id.
/// @param out_connection_string Receives `HostName=...;DeviceId=...;SharedAccessKey=...`,
///        owned by the caller (free it with `c2d_string_free`).
/// @retval C2D_RESULT_OK The device was created.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the id is not valid, or the device
///         exists already.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_create_device(
    hub: *const c2d_hub,
    device_id: *const c_char,
    out_connection_string: *mut *mut c_char,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_connection_string, "out_connection_string")?;
        let device_id = text(device_id, "device_id")?;
        let h = get(hub, "hub")?;
        let cs = h.with(|hub| block_on(hub.create_sas_device(device_id))?)?;
        out.write(owned_string(cs)?);
        Ok(())
    })
}

/// Registers an X.509 device (`selfSigned`) with a new self-signed certificate valid for a
/// year, and returns its connection string, certificate and key: give the last two to
/// `c2d_device_options_set_client_certificate_pem`.
///
/// @param hub The hub.
/// @param device_id The new device's id (the certificate's common name).
/// @param out_connection_string Receives `HostName=...;DeviceId=...;x509=true`, owned by the
///        caller (free it with `c2d_string_free`).
/// @param out_cert_pem Receives the certificate, PEM, owned by the caller (`c2d_string_free`).
/// @param out_key_pem Receives its private key, PEM, owned by the caller (`c2d_string_free`).
/// @retval C2D_RESULT_OK The device was created.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the id is not valid, or the device
///         exists already.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_create_x509_device(
    hub: *const c2d_hub,
    device_id: *const c_char,
    out_connection_string: *mut *mut c_char,
    out_cert_pem: *mut *mut c_char,
    out_key_pem: *mut *mut c_char,
) -> c2d_result {
    call(|| {
        let out_cs = Out::new(out_connection_string, "out_connection_string")?;
        let out_cert = Out::new(out_cert_pem, "out_cert_pem")?;
        let out_key = Out::new(out_key_pem, "out_key_pem")?;
        let device_id = text(device_id, "device_id")?;
        let h = get(hub, "hub")?;
        let (cs, cert) = h.with(|hub| block_on(hub.create_x509_device(device_id))?)?;
        let (cs, cert_pem, key_pem) = (
            owned_string(cs)?,
            owned_string(cert.cert_pem)?,
            owned_string(cert.key_pem)?,
        );
        out_cs.write(cs);
        out_cert.write(cert_pem);
        out_key.write(key_pem);
        Ok(())
    })
}

/// Counts the messages queued for a device, in any state (waiting, or delivered and not yet
/// settled).
///
/// @param hub The hub.
/// @param device_id The device.
/// @param out_depth Receives the count (0 for an unknown device).
/// @retval C2D_RESULT_OK The queue was counted.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_queue_depth(
    hub: *const c2d_hub,
    device_id: *const c_char,
    out_depth: *mut usize,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_depth, "out_depth")?;
        let device_id = text(device_id, "device_id")?;
        out.write(get(hub, "hub")?.with(|h| Ok(h.queue_depth(device_id)))?);
        Ok(())
    })
}

/// Counts the requests the hub refused for a reason since it started (what `/metrics`
/// counts as `c2d_hub_refused_total{reason}`): `throttled`, `bad_signature`, ….
///
/// @param hub The hub.
/// @param reason The reason.
/// @param out_count Receives the count.
/// @retval C2D_RESULT_OK The refusals were counted.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_refusals(
    hub: *const c2d_hub,
    reason: *const c_char,
    out_count: *mut u64,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_count, "out_count")?;
        let reason = text(reason, "reason")?;
        out.write(get(hub, "hub")?.with(|h| Ok(h.refusals(reason)))?);
        Ok(())
    })
}

/// The IoT Hub error `c2d_hub_fault_refuse_sends` answers sends with.
pub type c2d_send_refusal = u32;
/// 429001 ThrottlingException (`C2D_RESULT_THROTTLED` to c2d's clients, retried).
pub const C2D_SEND_REFUSAL_THROTTLED: c2d_send_refusal = 0;
/// 503001 ServiceUnavailable, server busy (`C2D_RESULT_UNAVAILABLE`, retried).
pub const C2D_SEND_REFUSAL_BUSY: c2d_send_refusal = 1;
/// 403002 IotHubQuotaExceeded, the daily message quota used up (`C2D_RESULT_QUOTA_EXCEEDED`,
/// not retried).
pub const C2D_SEND_REFUSAL_QUOTA: c2d_send_refusal = 2;

fn fault(hub: *const c2d_hub, fault: Fault) -> c2d_core::Result<usize> {
    get(hub, "hub")?.with(|h| h.faults().apply(&fault).map_err(Into::into))
}

fn write_count(out: *mut usize, n: usize) -> c2d_core::Result<()> {
    if !out.is_null() {
        Out::new(out, "out_count")?.write(n);
    }
    Ok(())
}

/// A fault: ends the device's connections now (its MQTT session, its AMQP connection), the
/// way a network drop looks (no DISCONNECT or close frame), or with the protocol's close when
/// `polite`. The messages they held locked go back to the queue; the device reconnects by
/// itself. Each fault is logged, counted in `/metrics` (`c2d_hub_faults_total`) and, while
/// it lasts, shown on the hub's page.
///
/// @param hub The hub.
/// @param device_id The device (NULL: every device).
/// @param polite Close with the protocol's close instead.
/// @param out_count Receives how many connections ended (may be NULL).
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_fault_drop(
    hub: *const c2d_hub,
    device_id: *const c_char,
    polite: bool,
    out_count: *mut usize,
) -> c2d_result {
    call(|| {
        let device = (!device_id.is_null())
            .then(|| text(device_id, "device_id").map(str::to_string))
            .transpose()?;
        let n = fault(
            hub,
            Fault::Drop {
                device,
                transport: None,
                polite,
            },
        )?;
        write_count(out_count, n)
    })
}

/// A fault: loses the device's next `count` acknowledgements (complete, reject, abandon) on
/// any transport, as a PUBACK lost on the way is: the message stays locked until its lock
/// runs out (or `c2d_hub_fault_expire_locks`), then comes again.
///
/// @param hub The hub.
/// @param device_id A registered device.
/// @param count How many (at least 1).
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the device is unknown or `count`
///         is 0.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_fault_lose_acks(
    hub: *const c2d_hub,
    device_id: *const c_char,
    count: u32,
) -> c2d_result {
    call(|| {
        let device = text(device_id, "device_id")?.to_string();
        fault(hub, Fault::LoseAcks { device, count }).map(drop)
    })
}

/// A fault: holds every delivery to the device for `delay_ms` before it is sent (its lock
/// runs meanwhile), until `c2d_hub_fault_clear` (or a delay of 0).
///
/// @param hub The hub.
/// @param device_id A registered device.
/// @param delay_ms The delay in milliseconds (at most 24 hours).
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the device is unknown or the delay
///         is over 24 hours.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_fault_delay(
    hub: *const c2d_hub,
    device_id: *const c_char,
    delay_ms: u64,
) -> c2d_result {
    call(|| {
        let device = text(device_id, "device_id")?.to_string();
        fault(hub, Fault::Delay { device, delay_ms }).map(drop)
    })
}

/// A fault: holds the hub's store commits for `for_ms`, as a slow disk would: sends wait for
/// their answer (each answered once durable, or once its device has completed it), nothing
/// is lost.
///
/// @param hub The hub.
/// @param for_ms How long, in milliseconds (at most 24 hours).
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL or `for_ms` is over 24 hours.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_fault_stall_store(hub: *const c2d_hub, for_ms: u64) -> c2d_result {
    call(|| fault(hub, Fault::StallStore { for_ms }).map(drop))
}

/// A fault: refuses C2D sends with one of IoT Hub's errors, the next `count` of them, or all
/// for `for_ms` (exactly one of the two non-zero).
///
/// @param hub The hub.
/// @param error `C2D_SEND_REFUSAL_THROTTLED`, `_BUSY` or `_QUOTA`.
/// @param count How many sends (0: use `for_ms`).
/// @param for_ms For how long, in milliseconds (0: use `count`; at most 24 hours).
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL, `error` is unknown, or not exactly
///         one of `count` and `for_ms` is non-zero.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_fault_refuse_sends(
    hub: *const c2d_hub,
    error: c2d_send_refusal,
    count: u32,
    for_ms: u64,
) -> c2d_result {
    call(|| {
        let error = match error {
            C2D_SEND_REFUSAL_THROTTLED => SendRefusal::Throttled,
            C2D_SEND_REFUSAL_BUSY => SendRefusal::Busy,
            C2D_SEND_REFUSAL_QUOTA => SendRefusal::Quota,
            other => {
                return Err(c2d_core::Error::invalid_argument(format!(
                    "{other} is not a c2d_send_refusal"
                )))
            }
        };
        let f = Fault::RefuseSends {
            error,
            count: (count > 0).then_some(count),
            for_ms: (for_ms > 0).then_some(for_ms),
        };
        fault(hub, f).map(drop)
    })
}

/// A fault: ends every message lock now, as if each had run out: the messages come again.
///
/// @param hub The hub.
/// @param out_count Receives how many locks ended (may be NULL).
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_fault_expire_locks(
    hub: *const c2d_hub,
    out_count: *mut usize,
) -> c2d_result {
    call(|| {
        let n = fault(hub, Fault::ExpireLocks)?;
        write_count(out_count, n)
    })
}

/// Ends every fault in force (acknowledgements still to lose, delays, a stall, refusals).
///
/// @param hub The hub.
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_fault_clear(hub: *const c2d_hub) -> c2d_result {
    call(|| {
        get(hub, "hub")?.with(|h| {
            h.faults().clear();
            Ok(())
        })
    })
}

/// Reads how many acknowledgements `c2d_hub_fault_lose_acks` made the hub lose since it
/// started.
///
/// @param hub The hub.
/// @param out_count Receives the count.
/// @retval C2D_RESULT_OK Done.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_CLOSED The hub was stopped.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_acks_lost(hub: *const c2d_hub, out_count: *mut u64) -> c2d_result {
    call(|| {
        let out = Out::new(out_count, "out_count")?;
        out.write(get(hub, "hub")?.with(|h| Ok(h.faults().acks_lost()))?);
        Ok(())
    })
}

/// Moves the hub's manual clock forward: messages whose TTL passes expire, locks that end
/// return their messages to the queue, and so on, as if that time had gone by.
///
/// @param hub A hub started with `c2d_hub_options_use_manual_clock`.
/// @param ms How far to move the clock, in milliseconds.
/// @retval C2D_RESULT_OK The clock moved.
/// @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL or runs on the system clock.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_advance_clock(hub: *const c2d_hub, ms: u64) -> c2d_result {
    call(|| {
        let clock = get(hub, "hub")?.clock.as_ref().ok_or_else(|| {
            invalid("the hub runs on the system clock (see c2d_hub_options_use_manual_clock)")
        })?;
        clock.advance(Duration::from_millis(ms));
        Ok(())
    })
}

/// Stops the hub: stops listening, closes every connection (messages in flight go back to
/// their queues) and closes the store. Everything accepted is on disk; starting a hub on the
/// same data directory serves it again. Stopping twice is not an error.
///
/// @param hub The hub.
/// @retval C2D_RESULT_OK The hub stopped.
/// @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_hub_stop(hub: *const c2d_hub) -> c2d_result {
    call(|| get(hub, "hub")?.stop())
}

/// Stops the hub (as `c2d_hub_stop`) and frees it.
///
/// @param hub The hub, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once, when no other call is using the hub.
#[no_mangle]
pub extern "C" fn c2d_hub_free(hub: *mut c2d_hub) {
    call_infallible(|| {
        // SAFETY: the hub came from c2d_hub_start and is freed once.
        if let Some(h) = unsafe { from_handle(hub) } {
            let _ = h.stop();
        }
    })
}
