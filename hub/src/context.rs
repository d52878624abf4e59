//! [`HubContext`]: what every connection of the hub holds (an `Arc` of it) — the store, the
//! authorizer, the sessions, the shutdown signal, the count of live connections, the page's
//! secret, the refusal counters and the faults in force.
//!
//! May import the store, auth, sessions and state, never a protocol, the listener or
//! `local_hub` (which makes the context and hands it down).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::auth::x509::{DeviceCas, PeerCertificates};
use crate::auth::{Access, AuthError, Grant};
use crate::fault_state::{FaultState, SendRefusal};
use crate::sessions::{Presence, Sessions};
use crate::store::Store;
use crate::throttle::{Admission, Operation, Throttle};

/// What every connection task shares.
pub(crate) struct HubContext {
    /// The state and its persistence.
    pub store: Store,
    /// The hub's host name (what SAS tokens are scoped to).
    pub host_name: String,
    /// The CAs `certificateAuthority` devices chain to.
    pub device_cas: DeviceCas,
    /// Unacknowledged MQTT PUBLISHes per device connection.
    pub mqtt_in_flight: usize,
    /// Who is connected, and the signals between connections.
    pub sessions: Sessions,
    /// The secret of the hub's page and metrics (new at every start).
    pub ui_token: String,
    /// The HTTPS port, as bound.
    pub https_port: u16,
    /// Connections and requests refused, by reason.
    pub refused: prometheus::IntCounterVec,
    /// IoT Hub's operation throttles, when the hub keeps them.
    pub throttle: Throttle,
    /// The delays and send refusals faults asked for.
    pub faults: FaultState,
    /// Faults applied, by kind (`c2d_hub_faults_total`).
    pub faults_applied: prometheus::IntCounterVec,
    shutdown: watch::Receiver<bool>,
    connections: AtomicUsize,
    idle: Notify,
}

impl HubContext {
    /// A context whose connections end when `shutdown` turns true.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        host_name: String,
        device_cas: DeviceCas,
        mqtt_in_flight: usize,
        ui_token: String,
        https_port: u16,
        refused: prometheus::IntCounterVec,
        shutdown: watch::Receiver<bool>,
    ) -> HubContext {
        HubContext {
            store,
            host_name,
            device_cas,
            mqtt_in_flight: mqtt_in_flight.max(1),
            sessions: Sessions::default(),
            ui_token,
            https_port,
            refused,
            throttle: Throttle::default(),
            faults: FaultState::default(),
            faults_applied: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "c2d_hub_faults_total",
                    "Faults the hub was asked for (fault API, `c2d hub fault`), by kind",
                ),
                &["fault"],
            )
            .expect("valid counter options"),
            shutdown,
            connections: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    /// Verifies a SAS token and checks it grants `access`.
    pub fn authorize(&self, token: &str, access: Access<'_>) -> Result<Grant, AuthError> {
        let now = self.store.now();
        let grant = self
            .store
            .read(|s| crate::auth::authenticate(&s.registry, &self.host_name, token, now))
            .and_then(|grant| grant.check(&self.host_name, access).map(|()| grant));
        grant.inspect_err(|e| self.refuse(e.reason()))
    }

    /// Authenticates a device by the client certificates of its connection.
    pub fn authorize_x509(
        &self,
        device_id: &str,
        certificates: &PeerCertificates,
    ) -> Result<Grant, AuthError> {
        let chain = certificates.as_deref().map_or(&[][..], |c| &c[..]);
        let now = self.store.now();
        self.store
            .read(|s| {
                crate::auth::x509::authenticate(
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

    /// Takes a turn for an `op` request under the hub's throttling; a refusal is counted
    /// (`reason="throttled"`) and logged.
    pub fn admit(&self, op: Operation) -> Admission {
        let admission = self.throttle.admit(op);
        if admission == Admission::Refused {
            tracing::info!(operation = ?op, "throttled: the backlog is full");
            self.refuse("throttled");
        }
        admission
    }

    /// The error a C2D send is refused with by a fault, if one is in force; a refusal is
    /// counted (`reason="fault"`) and logged.
    pub fn refused_by_fault(&self) -> Option<SendRefusal> {
        let refusal = self.faults.refuse_send()?;
        tracing::info!(error = refusal.code(), "C2D send refused by a fault");
        self.refuse("fault");
        Some(refusal)
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

    /// Records that an HTTPS device polled for its messages now.
    pub fn polled(&self, device: &str) {
        self.sessions.polled(device, self.store.now());
    }

    /// Turns true when the hub stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Waits until no connection task is left.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.connections.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a connection task for the whole of its life.
struct ConnectionGuard(Arc<HubContext>);

impl ConnectionGuard {
    fn new(ctx: &Arc<HubContext>) -> Self {
        ctx.connections.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(ctx.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Runs a connection's task, counted (so that the hub's stop can wait for it) and ended when
/// the hub stops.
pub(crate) async fn run_connection(
    ctx: &Arc<HubContext>,
    serve: impl std::future::Future<Output = ()>,
) {
    let _guard = ConnectionGuard::new(ctx);
    let mut shutdown = ctx.shutdown_signal();
    tokio::select! {
        _ = serve => {}
        _ = until_true(&mut shutdown) => {}
    }
}

/// Resolves once the watched flag is true (or its sender is gone).
pub(crate) async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
