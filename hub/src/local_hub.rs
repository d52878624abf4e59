//! [`LocalHub`]: the one composition root. `start` opens the store, loads the TLS identity,
//! makes the [`HubContext`], binds the listeners and starts the time rules; the accessors say
//! where it all is; `stop` ends it. Nothing else in the crate imports this module.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use c2d::Device;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::{HubConfig, StartError};
use crate::context::HubContext;
use crate::listener::{accept_loop, Listener};
use crate::store::Store;
use crate::tls::{self, HubTls};

/// A running hub.
pub struct LocalHub {
    pub(crate) ctx: Arc<HubContext>,
    shutdown: watch::Sender<bool>,
    tls: HubTls,
    mqtt: SocketAddr,
    amqp: SocketAddr,
    https: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LocalHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalHub")
            .field("host_name", &self.ctx.host_name)
            .field("mqtt", &self.mqtt)
            .field("amqp", &self.amqp)
            .field("https", &self.https)
            .finish()
    }
}

/// Where a hub is and how to reach it ([`LocalHub::endpoints`]).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The host name in the hub's connection strings.
    pub host_name: String,
    /// The bound MQTT port.
    pub mqtt_port: u16,
    /// The bound AMQP port.
    pub amqp_port: u16,
    /// The bound HTTPS port.
    pub https_port: u16,
    /// The CA certificate clients must trust (PEM).
    pub ca_pem: String,
    /// Where that certificate is.
    pub ca_path: std::path::PathBuf,
    /// The `service` policy's connection string.
    pub service_connection_string: String,
    /// The `iothubowner` policy's connection string.
    pub owner_connection_string: String,
    /// The live page's address with its token.
    pub ui_url: String,
}

impl LocalHub {
    /// Opens the store, loads or makes the TLS identity, binds the listeners and starts
    /// serving. Must be called inside a tokio runtime.
    pub async fn start(config: HubConfig) -> Result<LocalHub, StartError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StartError::Store(format!("{}: {e}", config.data_dir.display())))?;
        let tls =
            tls::load_or_create(&config.data_dir, &config.host_name).map_err(StartError::Tls)?;
        let device_cas = crate::auth::x509::DeviceCas::from_pems(
            std::iter::once(tls.ca_pem.as_bytes())
                .chain(config.x509_ca_pems.iter().map(|p| p.as_slice())),
        )
        .map_err(StartError::Tls)?;
        let store = Store::open(
            &config.data_dir.join(crate::store::DB_FILE),
            config.limits.clone(),
            config.durability,
            config.clock.clone(),
        )
        .map_err(|e| StartError::Store(e.to_string()))?;
        let bind = |what: &'static str, port: u16| {
            let addr = SocketAddr::new(config.bind_address, port);
            async move {
                TcpListener::bind(addr)
                    .await
                    .map_err(|error| StartError::Bind { what, addr, error })
            }
        };
        let listeners = async {
            Ok::<_, StartError>((
                bind("MQTT", config.mqtt_port).await?,
                bind("AMQP", config.amqp_port).await?,
                bind("HTTPS", config.https_port).await?,
            ))
        }
        .await;
        let (mqtt_l, amqp_l, https_l) = match listeners {
            Ok(l) => l,
            Err(e) => {
                store.close();
                return Err(e);
            }
        };
        let ui_token = match crate::data_dir::new_token(&config.data_dir) {
            Ok(t) => t,
            Err(e) => {
                store.close();
                return Err(StartError::Store(e));
            }
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let https_port = https_l.local_addr().map_or(config.https_port, |a| a.port());
        let ctx = Arc::new(HubContext::new(
            store,
            config.host_name.clone(),
            device_cas,
            config.mqtt_in_flight,
            ui_token,
            https_port,
            crate::metrics::refused_counter(),
            shutdown_rx,
        ));
        ctx.throttle.set(config.throttling);
        let local = |l: &TcpListener| l.local_addr().expect("a bound listener has an address");
        let (mqtt, amqp, https) = (local(&mqtt_l), local(&amqp_l), local(&https_l));
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let tasks = vec![
            tokio::spawn(accept_loop(
                ctx.clone(),
                mqtt_l,
                acceptor.clone(),
                Listener::Mqtt,
            )),
            tokio::spawn(accept_loop(
                ctx.clone(),
                amqp_l,
                acceptor.clone(),
                Listener::Amqp,
            )),
            tokio::spawn(accept_loop(ctx.clone(), https_l, acceptor, Listener::Https)),
            tokio::spawn(crate::store::apply_time_rules(ctx.store.clone())),
        ];
        tracing::info!(host = %config.host_name, %mqtt, %amqp, %https, data_dir = %config.data_dir.display(), "hub started");
        Ok(LocalHub {
            ctx,
            shutdown,
            tls,
            mqtt,
            amqp,
            https,
            tasks,
        })
    }

    /// The hub's host name.
    pub fn host_name(&self) -> &str {
        &self.ctx.host_name
    }

    /// The bound MQTT port.
    pub fn mqtt_port(&self) -> u16 {
        self.mqtt.port()
    }

    /// The bound AMQP port.
    pub fn amqp_port(&self) -> u16 {
        self.amqp.port()
    }

    /// The bound HTTPS port.
    pub fn https_port(&self) -> u16 {
        self.https.port()
    }

    /// Path of the CA certificate clients must trust.
    pub fn ca_path(&self) -> &std::path::Path {
        &self.tls.ca_path
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.tls.ca_pem
    }

    /// The connection string of a shared access policy (`service`, `iothubowner`, …).
    pub fn policy_connection_string(&self, policy: &str) -> Option<String> {
        self.ctx.store.read(|s| {
            s.registry
                .policy(policy)
                .map(|p| p.connection_string(&self.ctx.host_name))
        })
    }

    /// The connection string of the `service` policy (send, feedback, purge).
    pub fn service_connection_string(&self) -> String {
        self.policy_connection_string("service")
            .expect("every hub has the service policy")
    }

    /// The connection string of the `iothubowner` policy (everything, registry included).
    pub fn owner_connection_string(&self) -> String {
        self.policy_connection_string("iothubowner")
            .expect("every hub has the iothubowner policy")
    }

    /// The address of the hub's live page, with the token that opens it (new at every
    /// start): `https://{host}:{port}/ui/?token=…`.
    pub fn ui_url(&self) -> String {
        crate::data_dir::ui_url(&self.ctx.host_name, self.https.port(), &self.ctx.ui_token)
    }

    /// `host:port` of the HTTPS endpoint, for clients of a hub on a non-standard port.
    pub fn https_endpoint(&self) -> String {
        format!("{}:{}", self.ctx.host_name, self.https.port())
    }

    /// Where the hub is and how to reach it: what a binding's hub object keeps, so that it
    /// still answers once the hub is stopped.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            host_name: self.host_name().to_string(),
            mqtt_port: self.mqtt_port(),
            amqp_port: self.amqp_port(),
            https_port: self.https_port(),
            ca_pem: self.ca_pem().to_string(),
            ca_path: self.ca_path().to_path_buf(),
            service_connection_string: self.service_connection_string(),
            owner_connection_string: self.owner_connection_string(),
            ui_url: self.ui_url(),
        }
    }

    /// Registers a device with generated keys and returns its connection string.
    pub async fn create_sas_device(&self, id: &str) -> Result<String, c2d::Error> {
        let device = self.create_device(id).await?;
        device
            .connection_string(&self.ctx.host_name)
            .ok_or_else(|| c2d::Error::new(c2d::ErrorKind::Internal, "the new device has no key"))
    }

    /// Registers a device directly (as the REST registry would) and returns it with its keys.
    pub async fn create_device(&self, id: &str) -> Result<Device, c2d::Error> {
        self.create_device_with(Device::new_sas(id)).await
    }

    /// Registers a device as described (for example an X.509 one).
    pub async fn create_device_with(&self, device: Device) -> Result<Device, c2d::Error> {
        let id = device.device_id.clone();
        let r = self
            .ctx
            .store
            .exec(move |s, now| s.put_device(now, &id, device, None))
            .await
            .map_err(|e| c2d::Error::new(c2d::ErrorKind::Unavailable, e.to_string()))?;
        r.map_err(|e| c2d::Error::invalid_argument(e.to_string()))
    }

    /// Registers an X.509 device (`selfSigned`) with a new self-signed certificate, valid
    /// for a year; returns its connection string (`…;x509=true`) and the certificate with
    /// its key, for the device's `client_certificate`.
    pub async fn create_x509_device(
        &self,
        id: &str,
    ) -> Result<(String, crate::auth::x509::DeviceCertificate), c2d::Error> {
        c2d::identity::validate_id(id).map_err(c2d::Error::invalid_argument)?;
        let cert =
            crate::auth::x509::device_certificate(id, crate::auth::x509::valid_for_days(365), None)
                .map_err(|e| c2d::Error::new(c2d::ErrorKind::Internal, e))?;
        let device = Device::new_self_signed(id, cert.sha1_thumbprint.clone(), None);
        let device = self.create_device_with(device).await?;
        let cs = device
            .connection_string(&self.ctx.host_name)
            .expect("an X.509 device has a connection string");
        Ok((cs, cert))
    }

    /// The connection string of a registered device.
    pub fn device_connection_string(&self, id: &str) -> Option<String> {
        self.ctx.store.read(|s| {
            s.registry
                .device(id)
                .and_then(|d| d.connection_string(&self.ctx.host_name))
        })
    }

    /// Keeps IoT Hub's operation throttles from now on (`None`: no longer).
    pub fn set_throttling(&self, throttling: Option<crate::Throttling>) {
        self.ctx.throttle.set(throttling);
        match throttling {
            Some(t) => tracing::info!(throttling = %t, "throttling as IoT Hub"),
            None => tracing::info!("throttling off"),
        }
    }

    /// The throttling in force.
    pub fn throttling(&self) -> Option<crate::Throttling> {
        self.ctx.throttle.get()
    }

    /// Connections and requests refused for `reason` since the hub started (what `/metrics`
    /// counts as `c2d_hub_refused_total{reason}`): `throttled`, `bad_signature`, `unknown_device`, …
    pub fn refusals(&self, reason: &str) -> u64 {
        self.ctx.refused.with_label_values(&[reason]).get()
    }

    /// Faults on demand: drop connections, lose acknowledgements, delay deliveries, stall
    /// the store, refuse sends, expire locks ([`Faults`](crate::Faults)).
    pub fn faults(&self) -> crate::Faults {
        crate::faults::Faults::new(self.ctx.clone())
    }

    /// Messages queued for a device (any state).
    pub fn queue_depth(&self, id: &str) -> usize {
        self.ctx.store.read(|s| s.queue_depth(id))
    }

    /// Stops accepting, closes every connection (their in-flight messages go back to the
    /// queues) and closes the store.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.ctx.idle())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 10 s");
        }
        self.ctx.store.close();
        tracing::info!("hub stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_and_devices_as_the_bindings_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HubConfig::ephemeral(dir.path());
        let clock = config.use_manual_clock();
        let hub = LocalHub::start(config).await.unwrap();
        let e = hub.endpoints();
        assert_eq!(
            (e.mqtt_port, e.amqp_port, e.https_port),
            (hub.mqtt_port(), hub.amqp_port(), hub.https_port())
        );
        assert_eq!(e.ca_pem, std::fs::read_to_string(&e.ca_path).unwrap());
        assert!(e
            .ui_url
            .starts_with(&format!("https://localhost:{}/ui/", e.https_port)));
        assert!(e
            .service_connection_string
            .contains("SharedAccessKeyName=service;"));
        let cs = hub.create_sas_device("dev-1").await.unwrap();
        assert_eq!(hub.device_connection_string("dev-1").as_deref(), Some(&*cs));
        // the hub's clock is the one handed back
        let before = hub.ctx.store.now();
        clock.advance(Duration::from_secs(3600));
        assert_eq!(hub.ctx.store.now(), before + Duration::from_secs(3600));
        hub.stop().await;
    }

    #[tokio::test]
    async fn a_port_in_use_is_unavailable() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = HubConfig {
            mqtt_port: taken.local_addr().unwrap().port(),
            ..HubConfig::ephemeral(dir.path())
        };
        let e = c2d::Error::from(LocalHub::start(config).await.unwrap_err());
        assert_eq!(e.kind(), c2d::ErrorKind::Unavailable);
        assert!(e.message().contains("cannot listen"), "{e}");
    }
}
