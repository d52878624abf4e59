//! [`LocalHub`]: start the hub's store, TLS identity and listeners, report where they are,
//! and stop them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use c2d::Device;
use rumqttc::mqttbytes::QoS;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Notify};
use tokio_rustls::TlsAcceptor;

use crate::auth::{self, Access, AuthError, Grant};
use crate::clock::{Clock, SystemClock};
use crate::limits::Limits;
use crate::store::{Durability, Store};
use crate::tls::{self, HubTls};

/// How to run a hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where the database and the CA live (made if missing).
    pub data_dir: PathBuf,
    /// The hub's host name: what devices put in `HostName` and what SAS tokens are scoped to.
    pub host_name: String,
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// MQTT over TLS (IoT Hub: 8883; 0 = any free port).
    pub mqtt_port: u16,
    /// AMQP over TLS (IoT Hub: 5671; 0 = any free port).
    pub amqp_port: u16,
    /// HTTPS (IoT Hub: 443; 0 = any free port).
    pub https_port: u16,
    /// Queue rules.
    pub limits: Limits,
    /// How hard commits wait for the disk.
    pub durability: Durability,
    /// Unacknowledged MQTT PUBLISHes per device connection.
    pub mqtt_in_flight: usize,
    /// The clock (a [`crate::clock::ManualClock`] in tests). Every rule that time drives
    /// follows it: TTL, lock expiry, and feedback batching, so on a manual clock a feedback
    /// record made within the feedback interval of the previous batch (15 s by default) goes
    /// out only once the clock is advanced past that interval.
    pub clock: Arc<dyn Clock>,
    /// PEM certificates of the CAs that `certificateAuthority` devices' certificates may chain
    /// to (IoT Hub's registered, verified CAs). The hub's own development CA is always one.
    pub x509_ca_pems: Vec<Vec<u8>>,
}

impl HubConfig {
    /// IoT Hub's ports and rules, with data in `data_dir`, on 127.0.0.1 as `localhost`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            data_dir: data_dir.into(),
            host_name: "localhost".into(),
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mqtt_port: 8883,
            amqp_port: 5671,
            https_port: 443,
            limits: Limits::default(),
            durability: Durability::Fsync,
            mqtt_in_flight: 16,
            clock: Arc::new(SystemClock),
            x509_ca_pems: Vec::new(),
        }
    }

    /// Like [`new`](Self::new), on free ports chosen by the system (for tests).
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            mqtt_port: 0,
            amqp_port: 0,
            https_port: 0,
            ..HubConfig::new(data_dir)
        }
    }
}

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or the store could not be opened.
    #[error("store: {0}")]
    Store(String),
    /// The TLS identity could not be made or loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// A port could not be bound.
    #[error("cannot listen on {addr} ({what}): {error}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
}

pub(crate) struct MqttSession {
    pub kick: Option<oneshot::Sender<()>>,
    /// Resolves when the session has ended (its sender is sent to or dropped then).
    pub done: oneshot::Receiver<()>,
    /// Its owner, transport and start.
    pub presence: Presence,
}

/// The AMQP link receiving a device's messages, and how to reach its connection.
pub(crate) struct AmqpReceiver {
    pub control: tokio::sync::mpsc::UnboundedSender<crate::amqp::Control>,
    /// Its owner, transport and start.
    pub presence: Presence,
}

/// A device's live connection, as the hub's page shows it.
#[derive(Debug, Clone)]
pub(crate) struct Presence {
    /// The connection (or link) that receives the device's messages.
    pub owner: u64,
    /// How it is connected.
    pub transport: c2d::Transport,
    /// Since when (the hub's clock).
    pub since: std::time::SystemTime,
}

/// How a WebSocket connection's peer is described (`{address} (WebSocket {subprotocol})`),
/// which tells the protocol sessions that they run inside one.
pub(crate) fn websocket_peer(address: &str, subprotocol: &str) -> String {
    format!("{address} (WebSocket {subprotocol})")
}

/// The transport of a device connection whose peer is described as `peer`.
pub(crate) fn transport_of(peer: &str, mqtt: bool) -> c2d::Transport {
    match (mqtt, peer.ends_with(')') && peer.contains(" (WebSocket ")) {
        (true, false) => c2d::Transport::Mqtt,
        (true, true) => c2d::Transport::MqttWs,
        (false, false) => c2d::Transport::Amqp,
        (false, true) => c2d::Transport::AmqpWs,
    }
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub store: Store,
    pub host_name: String,
    pub device_cas: crate::x509::DeviceCas,
    pub mqtt_in_flight: usize,
    shutdown: watch::Receiver<bool>,
    next_owner: AtomicU64,
    mqtt_sessions: Mutex<HashMap<String, MqttSession>>,
    mqtt_subscriptions: Mutex<HashMap<String, QoS>>,
    amqp_receivers: Mutex<HashMap<String, AmqpReceiver>>,
    connections: AtomicUsize,
    idle: Notify,
    /// Changes whenever a device connects or disconnects (an MQTT session or an AMQP
    /// receiving link begins or ends) or an HTTPS device polls.
    presence_version: AtomicU64,
    /// When each HTTPS device last polled (the hub's clock).
    https_polls: Mutex<HashMap<String, std::time::SystemTime>>,
    /// The secret of the hub's page and metrics (new at every start).
    pub ui_token: String,
    /// The HTTPS port, as bound.
    https_port: u16,
    /// Connections and requests refused, by reason.
    pub refused: prometheus::IntCounterVec,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Verifies a SAS token and checks it grants `access`.
    pub fn authorize(&self, token: &str, access: Access<'_>) -> Result<Grant, AuthError> {
        let now = self.store.now();
        let grant = self
            .store
            .read(|s| auth::authenticate(&s.registry, &self.host_name, token, now))
            .and_then(|grant| grant.check(&self.host_name, access).map(|()| grant));
        grant.inspect_err(|e| self.refuse(e.reason()))
    }

    /// Counts a refused connection or request.
    pub fn refuse(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    /// Logs and counts a TLS handshake that failed: at `warn` with rustls's reason when TLS
    /// refused the client (a certificate it cannot use, no common version or cipher), at
    /// `debug` when the client just went away (a port probe).
    pub fn handshake_failed(&self, peer: SocketAddr, listener: &str, e: &std::io::Error) {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => {
                tracing::warn!(%peer, listener, reason = %tls, "TLS handshake refused")
            }
            None => tracing::debug!(%peer, listener, error = %e, "TLS handshake failed"),
        }
        self.refuse("tls_handshake");
    }

    /// A device connection of `owner` over `transport` that starts now.
    pub fn presence_now(&self, owner: u64, transport: c2d::Transport) -> Presence {
        Presence {
            owner,
            transport,
            since: self.store.now(),
        }
    }

    fn presence_changed(&self) {
        self.presence_version.fetch_add(1, Ordering::Relaxed);
    }

    /// The HTTPS port, as bound.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// The devices connected now: their MQTT sessions and AMQP receiving links (the newer
    /// of the two where a device has both).
    pub fn presence(&self) -> HashMap<String, Presence> {
        let mut all: HashMap<String, Presence> = lock(&self.mqtt_sessions)
            .iter()
            .map(|(d, s)| (d.clone(), s.presence.clone()))
            .collect();
        for (d, r) in lock(&self.amqp_receivers).iter() {
            let newer = all.get(d).is_none_or(|p| p.since <= r.presence.since);
            if newer {
                all.insert(d.clone(), r.presence.clone());
            }
        }
        all
    }

    /// Records that an HTTPS device polled for its messages now.
    pub fn polled(&self, device: &str) {
        let now = self.store.now();
        lock(&self.https_polls).insert(device.to_string(), now);
        self.presence_changed();
    }

    /// When each HTTPS device last polled.
    pub fn last_polls(&self) -> HashMap<String, std::time::SystemTime> {
        lock(&self.https_polls).clone()
    }

    /// Changes whenever a device connects or disconnects, or an HTTPS device polls.
    pub fn presence_version(&self) -> u64 {
        self.presence_version.load(Ordering::Relaxed)
    }

    /// Authenticates a device by the client certificates of its connection.
    pub fn authorize_x509(
        &self,
        device_id: &str,
        certificates: &crate::x509::PeerCertificates,
    ) -> Result<Grant, AuthError> {
        let chain = certificates.as_deref().map_or(&[][..], |c| &c[..]);
        let now = self.store.now();
        self.store
            .read(|s| {
                crate::x509::authenticate(
                    &s.registry,
                    &self.device_cas,
                    &self.host_name,
                    device_id,
                    chain,
                    now,
                )
            })
            .inspect_err(|e| self.refuse(e.reason()))
    }

    /// A new id for a receiver (connection or link) that locks messages.
    pub fn new_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    pub fn replace_mqtt_session(&self, device: &str, session: MqttSession) -> Option<MqttSession> {
        let old = lock(&self.mqtt_sessions).insert(device.to_string(), session);
        self.presence_changed();
        old
    }

    /// Starts a session; returns whether a previous one (CleanSession=0) was kept.
    pub fn mqtt_begin_session(&self, device: &str, clean: bool) -> bool {
        let mut subs = lock(&self.mqtt_subscriptions);
        if clean {
            subs.remove(device);
            false
        } else {
            subs.contains_key(device)
        }
    }

    pub fn end_mqtt_session(&self, device: &str, owner: u64, clean: bool) {
        let mut sessions = lock(&self.mqtt_sessions);
        if sessions
            .get(device)
            .is_some_and(|s| s.presence.owner == owner)
        {
            sessions.remove(device);
            self.presence_changed();
            if clean {
                lock(&self.mqtt_subscriptions).remove(device);
            }
        }
    }

    pub fn mqtt_subscription(&self, device: &str) -> Option<QoS> {
        lock(&self.mqtt_subscriptions).get(device).copied()
    }

    pub fn mqtt_subscribe(&self, device: &str, qos: QoS) {
        lock(&self.mqtt_subscriptions).insert(device.to_string(), qos);
    }

    pub fn mqtt_unsubscribe(&self, device: &str) {
        lock(&self.mqtt_subscriptions).remove(device);
    }

    /// Makes `receiver` the device's AMQP receiving link; returns the one it replaces.
    pub fn replace_amqp_receiver(
        &self,
        device: &str,
        receiver: AmqpReceiver,
    ) -> Option<AmqpReceiver> {
        let old = lock(&self.amqp_receivers).insert(device.to_string(), receiver);
        self.presence_changed();
        old
    }

    /// Forgets the device's AMQP receiving link if it is still `owner`'s.
    pub fn end_amqp_receiver(&self, device: &str, owner: u64) {
        let mut receivers = lock(&self.amqp_receivers);
        if receivers
            .get(device)
            .is_some_and(|r| r.presence.owner == owner)
        {
            receivers.remove(device);
            self.presence_changed();
        }
    }

    /// Closes a device's connections (it was deleted).
    pub fn disconnect_device(&self, device: &str) {
        if let Some(r) = lock(&self.amqp_receivers).remove(device) {
            let _ = r
                .control
                .send(crate::amqp::Control::Steal(r.presence.owner));
        }
        if let Some(mut s) = lock(&self.mqtt_sessions).remove(device) {
            if let Some(k) = s.kick.take() {
                let _ = k.send(());
            }
        }
        lock(&self.mqtt_subscriptions).remove(device);
        lock(&self.https_polls).remove(device);
        self.presence_changed();
    }
}

/// Counts a connection task for the whole of its life.
struct ConnectionGuard(Arc<Shared>);

impl ConnectionGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.connections.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(shared.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A running hub.
pub struct LocalHub {
    pub(crate) shared: Arc<Shared>,
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
            .field("host_name", &self.shared.host_name)
            .field("mqtt", &self.mqtt)
            .field("amqp", &self.amqp)
            .field("https", &self.https)
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Mqtt,
    Amqp,
    Https,
}

impl LocalHub {
    /// Opens the store, loads or makes the TLS identity, binds the listeners and starts
    /// serving. Must be called inside a tokio runtime.
    pub async fn start(config: HubConfig) -> Result<LocalHub, StartError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StartError::Store(format!("{}: {e}", config.data_dir.display())))?;
        let tls =
            tls::load_or_create(&config.data_dir, &config.host_name).map_err(StartError::Tls)?;
        let device_cas = crate::x509::DeviceCas::from_pems(
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
        let ui_token = match crate::http::ui::new_token(&config.data_dir) {
            Ok(t) => t,
            Err(e) => {
                store.close();
                return Err(StartError::Store(e));
            }
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            host_name: config.host_name.clone(),
            device_cas,
            mqtt_in_flight: config.mqtt_in_flight.max(1),
            shutdown: shutdown_rx,
            next_owner: AtomicU64::new(0),
            mqtt_sessions: Mutex::new(HashMap::new()),
            mqtt_subscriptions: Mutex::new(HashMap::new()),
            amqp_receivers: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            idle: Notify::new(),
            presence_version: AtomicU64::new(0),
            https_polls: Mutex::new(HashMap::new()),
            ui_token,
            https_port: https_l.local_addr().map_or(config.https_port, |a| a.port()),
            refused: crate::metrics::refused_counter(),
        });
        let local = |l: &TcpListener| l.local_addr().expect("a bound listener has an address");
        let (mqtt, amqp, https) = (local(&mqtt_l), local(&amqp_l), local(&https_l));
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let mut tasks = vec![
            tokio::spawn(accept_loop(
                shared.clone(),
                mqtt_l,
                acceptor.clone(),
                Protocol::Mqtt,
            )),
            tokio::spawn(accept_loop(
                shared.clone(),
                amqp_l,
                acceptor.clone(),
                Protocol::Amqp,
            )),
            tokio::spawn(accept_loop(
                shared.clone(),
                https_l,
                acceptor,
                Protocol::Https,
            )),
        ];
        tasks.push(tokio::spawn(sweeper(shared.clone())));
        tracing::info!(host = %config.host_name, %mqtt, %amqp, %https, data_dir = %config.data_dir.display(), "hub started");
        Ok(LocalHub {
            shared,
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
        &self.shared.host_name
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
        self.shared.store.read(|s| {
            s.registry
                .policy(policy)
                .map(|p| p.connection_string(&self.shared.host_name))
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
        crate::http::ui::url(
            &self.shared.host_name,
            self.https.port(),
            &self.shared.ui_token,
        )
    }

    /// `host:port` of the HTTPS endpoint, for clients of a hub on a non-standard port.
    pub fn https_endpoint(&self) -> String {
        format!("{}:{}", self.shared.host_name, self.https.port())
    }

    /// Registers a device directly (as the REST registry would) and returns it with its keys.
    pub async fn create_device(&self, id: &str) -> Result<Device, c2d::Error> {
        self.create_device_with(Device::new_sas(id)).await
    }

    /// Registers a device as described (for example an X.509 one).
    pub async fn create_device_with(&self, device: Device) -> Result<Device, c2d::Error> {
        let id = device.device_id.clone();
        let r = self
            .shared
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
    ) -> Result<(String, crate::x509::DeviceCertificate), c2d::Error> {
        c2d::identity::validate_id(id).map_err(c2d::Error::invalid_argument)?;
        let cert = crate::x509::device_certificate(id, crate::x509::valid_for_days(365), None)
            .map_err(|e| c2d::Error::new(c2d::ErrorKind::Internal, e))?;
        let device = Device::new_self_signed(id, cert.sha1_thumbprint.clone(), None);
        let device = self.create_device_with(device).await?;
        let cs = device
            .connection_string(&self.shared.host_name)
            .expect("an X.509 device has a connection string");
        Ok((cs, cert))
    }

    /// The connection string of a registered device.
    pub fn device_connection_string(&self, id: &str) -> Option<String> {
        self.shared.store.read(|s| {
            s.registry
                .device(id)
                .and_then(|d| d.connection_string(&self.shared.host_name))
        })
    }

    /// Messages queued for a device (any state).
    pub fn queue_depth(&self, id: &str) -> usize {
        self.shared.store.read(|s| s.queue_depth(id))
    }

    /// Stops accepting, closes every connection (their in-flight messages go back to the
    /// queues) and closes the store.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        let wait_idle = async {
            loop {
                let notified = self.shared.idle.notified();
                if self.shared.connections.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), wait_idle)
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 10 s");
        }
        self.shared.store.close();
        tracing::info!("hub stopped");
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    protocol: Protocol,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let serve = serve_connection(shared.clone(), tcp, peer, acceptor, protocol);
            run_connection(&shared, serve).await;
        });
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    protocol: Protocol,
) {
    // each protocol's session is boxed: a connection's task then holds its own protocol's
    // state, not room for the largest of the three (10.5 KiB where MQTT needs 3.1)
    if let Protocol::Amqp = protocol {
        return Box::pin(crate::amqp::serve_tcp(shared, tcp, peer, acceptor)).await;
    }
    // the TLS stream lives in a block that ends before the session is awaited: a binding
    // still in scope at that await keeps its 1.2 KiB slot in this future for the
    // connection's life, moved from or not
    let session: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = {
        let accept = Box::pin(acceptor.accept(tcp));
        let tls = match tokio::time::timeout(Duration::from_secs(10), accept).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let listener = match protocol {
                    Protocol::Mqtt => "mqtt",
                    Protocol::Amqp => "amqp",
                    Protocol::Https => "https",
                };
                shared.handshake_failed(peer, listener, &e);
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        let certificates = crate::x509::peer_certificates(tls.get_ref().1);
        let peer = peer.to_string();
        match protocol {
            Protocol::Mqtt => Box::pin(crate::mqtt::serve(shared, tls, peer, certificates)),
            Protocol::Https => Box::pin(crate::http::serve(shared, tls, peer, certificates)),
            Protocol::Amqp => unreachable!("AMQP connections are served by serve_tcp"),
        }
    };
    session.await
}

/// Applies the time-driven rules (TTL, lock expiry, feedback batching) on time, whether or
/// not any device is connected.
async fn sweeper(shared: Arc<Shared>) {
    const MAX_NAP: Duration = Duration::from_millis(250);
    let mut jumps = shared.store.clock().jumps();
    loop {
        let now = shared.store.now();
        let due = shared
            .store
            .read(|s| s.next_deadline())
            .is_some_and(|d| d <= now);
        if due {
            match shared.store.exec(|s, now| s.sweep(now)).await {
                Ok(()) => continue,
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
        crate::clock::nap(&mut jumps, MAX_NAP).await;
    }
}

/// Runs a connection's task, counted (so that `stop` can wait for it) and ended when the
/// hub stops.
pub(crate) async fn run_connection(
    shared: &Arc<Shared>,
    serve: impl std::future::Future<Output = ()>,
) {
    let _guard = ConnectionGuard::new(shared);
    let mut shutdown = shared.shutdown_signal();
    tokio::select! {
        _ = serve => {}
        _ = until_true(&mut shutdown) => {}
    }
}

/// Resolves once the watched flag is true (or its sender is gone).
pub(crate) async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
