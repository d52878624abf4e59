//! A local hub in the process, for tests and development: the package's `LocalHub`.

use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::Object;
use napi::{Env, Result};
use napi_derive::napi;
use tokio::sync::RwLock;

use c2d::{Error, ErrorKind};
use c2d_hub::{Endpoints, HubConfig, LocalHub as Hub, ManualClock};

use crate::error::throw;
use crate::runtime::{millis, opt_millis, promise};

/// The options of a local hub (IoT Hub's rules where absent).
#[napi(object)]
pub struct LocalHubOptions {
    /// The data directory (a temporary one, removed by `stop()`, when absent).
    pub data_dir: Option<String>,
    /// Whether the hub keeps a manual clock, moved by `advanceClock`.
    pub manual_clock: Option<bool>,
    /// How many messages a device's queue holds.
    pub max_queue_depth: Option<u32>,
    /// The largest message body, in bytes.
    pub max_message_size: Option<u32>,
    /// The time to live of a message sent without one, in milliseconds.
    pub default_ttl_ms: Option<f64>,
    /// How long a delivered message stays locked, in milliseconds.
    pub lock_timeout_ms: Option<f64>,
    /// How many deliveries a message gets.
    pub max_delivery_count: Option<u32>,
    /// How long feedback records are batched, in milliseconds.
    pub feedback_interval_ms: Option<f64>,
    /// `fsync` (the default: an accepted message is on disk) or `os`.
    pub durability: Option<String>,
    /// Throttle as an IoT hub of this tier (`F1`, `S1`, `S2`, `S3`); not at all when absent.
    pub tier: Option<String>,
    /// The unit count of `tier` (1 when absent).
    pub units: Option<u32>,
    /// How long a request over the tier's rate waits its turn before it is refused, in
    /// milliseconds (1 000 when absent).
    pub throttle_backlog_ms: Option<f64>,
}

/// The hub's throttling for a tier (none without one), units and backlog.
fn throttling(
    tier: Option<&str>,
    units: Option<u32>,
    backlog_ms: Option<f64>,
) -> c2d::Result<Option<c2d_hub::Throttling>> {
    let backlog = opt_millis("throttleBacklogMs", backlog_ms)?;
    c2d_hub::Throttling::from_options(tier, units, backlog)
}

struct Running {
    hub: Hub,
    /// The temporary data directory, removed after the hub stops.
    temp: Option<tempfile::TempDir>,
}

/// A running hub on free ports, its data in a directory of its own; stopped by `stop()`, or
/// in the background when collected.
#[napi]
pub struct LocalHub {
    running: Arc<RwLock<Option<Running>>>,
    clock: Option<Arc<ManualClock>>,
    data_dir: PathBuf,
    endpoints: Endpoints,
}

fn stopped() -> Error {
    Error::new(ErrorKind::Closed, "the hub was stopped")
}

fn config(
    o: LocalHubOptions,
) -> c2d::Result<(
    HubConfig,
    Option<tempfile::TempDir>,
    Option<Arc<ManualClock>>,
)> {
    let temp = match o.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("making a temporary directory: {e}"),
            )
        })?),
    };
    let data_dir = match (&temp, o.data_dir) {
        (Some(t), _) => t.path().to_path_buf(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => unreachable!("a data directory is given or made"),
    };
    let mut config = HubConfig::ephemeral(&data_dir);
    let limits = &mut config.limits;
    if let Some(n) = o.max_queue_depth {
        limits.max_queue_depth = n as usize;
    }
    if let Some(n) = o.max_message_size {
        limits.max_message_size = n as usize;
    }
    if let Some(n) = o.max_delivery_count {
        limits.max_delivery_count = n;
    }
    if let Some(t) = opt_millis("defaultTtlMs", o.default_ttl_ms)? {
        limits.default_ttl = t;
    }
    if let Some(t) = opt_millis("lockTimeoutMs", o.lock_timeout_ms)? {
        limits.lock_timeout = t;
    }
    if let Some(t) = opt_millis("feedbackIntervalMs", o.feedback_interval_ms)? {
        limits.feedback_interval = t;
    }
    config.durability = o.durability.as_deref().unwrap_or("fsync").parse()?;
    config.throttling = throttling(o.tier.as_deref(), o.units, o.throttle_backlog_ms)?;
    let clock = o
        .manual_clock
        .unwrap_or(false)
        .then(|| config.use_manual_clock());
    Ok((config, temp, clock))
}

#[napi]
impl LocalHub {
    /// Starts a hub.
    #[napi(ts_return_type = "Promise<LocalHub>")]
    pub fn start<'env>(env: &'env Env, options: LocalHubOptions) -> Result<Object<'env>> {
        let (config, temp, clock) = config(options).or_else(|e| throw(env, e))?;
        let data_dir = config.data_dir.clone();
        promise(env, async move {
            let hub = Hub::start(config).await.map_err(Error::from)?;
            Ok(LocalHub {
                clock,
                data_dir,
                endpoints: hub.endpoints(),
                running: Arc::new(RwLock::new(Some(Running { hub, temp }))),
            })
        })
    }

    /// The host name in the hub's connection strings.
    #[napi(getter)]
    pub fn host_name(&self) -> String {
        self.endpoints.host_name.clone()
    }

    /// The MQTT port.
    #[napi(getter)]
    pub fn mqtt_port(&self) -> u16 {
        self.endpoints.mqtt_port
    }

    /// The AMQP port.
    #[napi(getter)]
    pub fn amqp_port(&self) -> u16 {
        self.endpoints.amqp_port
    }

    /// The HTTPS (and WebSocket) port.
    #[napi(getter)]
    pub fn https_port(&self) -> u16 {
        self.endpoints.https_port
    }

    /// The PEM of the hub's development CA, which clients must trust.
    #[napi(getter)]
    pub fn ca_pem(&self) -> String {
        self.endpoints.ca_pem.clone()
    }

    /// The file holding that CA.
    #[napi(getter)]
    pub fn ca_file(&self) -> String {
        self.endpoints.ca_path.display().to_string()
    }

    /// The data directory.
    #[napi(getter)]
    pub fn data_dir(&self) -> String {
        self.data_dir.display().to_string()
    }

    /// The `service` policy's connection string (send, feedback, purge).
    #[napi(getter)]
    pub fn service_connection_string(&self) -> String {
        self.endpoints.service_connection_string.clone()
    }

    /// The `iothubowner` policy's connection string (everything, the registry too).
    #[napi(getter)]
    pub fn owner_connection_string(&self) -> String {
        self.endpoints.owner_connection_string.clone()
    }

    /// The address of the hub's live page with the token that opens it (new at every
    /// start); the token also reads `/metrics` as a bearer token.
    #[napi(getter)]
    pub fn ui_url(&self) -> String {
        self.endpoints.ui_url.clone()
    }

    /// Registers a device; resolves to its connection string.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn create_device<'env>(&self, env: &'env Env, device_id: String) -> Result<Object<'env>> {
        let running = self.running.clone();
        promise(env, async move {
            let guard = running.read().await;
            let hub = &guard.as_ref().ok_or_else(stopped)?.hub;
            hub.create_sas_device(&device_id).await
        })
    }

    /// Registers an X.509 device with a new self-signed certificate; resolves to its
    /// connection string, certificate and key.
    #[napi(ts_return_type = "Promise<X509Identity>")]
    pub fn create_x509_device<'env>(
        &self,
        env: &'env Env,
        device_id: String,
    ) -> Result<Object<'env>> {
        let running = self.running.clone();
        promise(env, async move {
            let guard = running.read().await;
            let hub = &guard.as_ref().ok_or_else(stopped)?.hub;
            let (connection_string, cert) = hub.create_x509_device(&device_id).await?;
            Ok(X509Identity {
                connection_string,
                cert_pem: cert.cert_pem,
                key_pem: cert.key_pem,
            })
        })
    }

    /// Throttles as an IoT hub of `tier` with `units` from now on (`tier` null: no longer).
    #[napi]
    pub fn set_throttling(
        &self,
        env: &Env,
        tier: Option<String>,
        units: Option<u32>,
        backlog_ms: Option<f64>,
    ) -> Result<()> {
        let t = throttling(tier.as_deref(), units, backlog_ms).or_else(|e| throw(env, e))?;
        let guard = self.running.blocking_read();
        match guard.as_ref() {
            Some(r) => {
                r.hub.set_throttling(t);
                Ok(())
            }
            None => throw(env, stopped()),
        }
    }

    /// Requests the hub refused for `reason` since it started (`throttled`, …).
    #[napi]
    pub fn refusals(&self, env: &Env, reason: String) -> Result<f64> {
        let guard = self.running.blocking_read();
        match guard.as_ref() {
            Some(r) => Ok(r.hub.refusals(&reason) as f64),
            None => throw(env, stopped()),
        }
    }

    /// Applies a fault given as JSON (`Faults` in index.ts builds it); returns how many
    /// connections it dropped or locks it ended.
    #[napi]
    pub fn apply_fault(&self, env: &Env, fault: String) -> Result<u32> {
        let guard = self.running.blocking_read();
        match guard.as_ref() {
            Some(r) => match r.hub.faults().apply_json(&fault) {
                Ok(n) => Ok(n as u32),
                Err(e) => throw(env, e.into()),
            },
            None => throw(env, stopped()),
        }
    }

    /// The faults in force, as JSON.
    #[napi]
    pub fn active_faults(&self, env: &Env) -> Result<String> {
        let guard = self.running.blocking_read();
        match guard.as_ref() {
            Some(r) => Ok(r.hub.faults().active_json()),
            None => throw(env, stopped()),
        }
    }

    /// Ends every fault in force.
    #[napi]
    pub fn clear_faults(&self, env: &Env) -> Result<()> {
        let guard = self.running.blocking_read();
        match guard.as_ref() {
            Some(r) => {
                r.hub.faults().clear();
                Ok(())
            }
            None => throw(env, stopped()),
        }
    }

    /// Acknowledgements lost to faults since the hub started.
    #[napi]
    pub fn acks_lost(&self, env: &Env) -> Result<f64> {
        let guard = self.running.blocking_read();
        match guard.as_ref() {
            Some(r) => Ok(r.hub.faults().acks_lost() as f64),
            None => throw(env, stopped()),
        }
    }

    /// How many messages are queued for a device (locked ones included).
    #[napi]
    pub fn queue_depth(&self, env: &Env, device_id: String) -> Result<u32> {
        // the JavaScript thread is no runtime thread: it may wait for a create_device
        let guard = self.running.blocking_read();
        match guard.as_ref() {
            Some(r) => Ok(r.hub.queue_depth(&device_id) as u32),
            None => throw(env, stopped()),
        }
    }

    /// Moves the hub's manual clock forward by `ms` (TTL and lock expiry without sleeping);
    /// the hub must have been started with `manualClock: true`.
    #[napi]
    pub fn advance_clock(&self, env: &Env, ms: f64) -> Result<()> {
        let by = millis("ms", ms).or_else(|e| throw(env, e))?;
        match &self.clock {
            Some(c) => {
                c.advance(by);
                Ok(())
            }
            None => throw(
                env,
                Error::invalid_argument(
                    "this hub keeps real time: start it with manualClock: true",
                ),
            ),
        }
    }

    /// Stops the hub (its clients see the connection end) and removes a temporary data
    /// directory. Stopping twice does nothing.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let running = self.running.clone();
        promise(env, async move {
            if let Some(r) = running.write().await.take() {
                r.hub.stop().await;
                drop(r.temp);
            }
            Ok(())
        })
    }
}

impl Drop for LocalHub {
    /// A hub collected without `stop()` is stopped in the background.
    fn drop(&mut self) {
        let running = self.running.clone();
        let _ = c2d::runtime::spawn(async move {
            if let Some(r) = running.write().await.take() {
                r.hub.stop().await;
                drop(r.temp);
            }
        });
    }
}

/// An X.509 device made by `createX509Device`.
#[napi(object)]
pub struct X509Identity {
    /// `HostName=…;DeviceId=…;x509=true`
    pub connection_string: String,
    /// The device's certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
}
