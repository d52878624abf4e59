//! The service client: send C2D messages over AMQP (or AMQP over WebSockets), follow each
//! message's own outcome and every feedback record, purge queues and manage devices.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fe2o3_amqp::types::definitions::{AmqpError, ErrorCondition, LinkError};
use fe2o3_amqp::types::messaging::{message::Body, Outcome};
use fe2o3_amqp::types::primitives::Value;
use fe2o3_amqp::{Receiver, Sender};
use tokio::sync::{broadcast, oneshot};

use crate::amqp::session::AmqpSession;
use crate::connection_string::{ConnectionString, Credential};
use crate::error::{Error, ErrorKind, Result};
use crate::message::{device_bound_address, Ack, Message, MessageId};
use crate::retry::RetryPolicy;
use crate::service::feedback::{decode_batch, FeedbackRecord};
use crate::service::registry::{PurgeResult, RegistryClient, RegistryOptions};
use crate::status::{ConnectionStatus, StatusReceiver, StatusSender};
use crate::transport::tls_config;

/// How a service client reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceTransport {
    /// AMQP over TLS, port 5671.
    #[default]
    Amqp,
    /// AMQP over a WebSocket, port 443.
    AmqpWs,
}

/// How long `close()` waits for the feedback pump to settle the feedback message it holds.
const PUMP_STOP: Duration = Duration::from_secs(2);
/// Records kept for `outcome()` calls that come after their record arrived.
const RECENT_RECORDS: usize = 10_000;
/// How long the tokens this client makes are valid by default; they are renewed well before.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Options for [`ServiceClient`].
#[derive(Debug, Clone)]
pub struct ServiceClientBuilder {
    host_name: String,
    key_name: String,
    key: String,
    connection_string: String,
    transport: ServiceTransport,
    trusted_ca_pem: Option<Vec<u8>>,
    port: Option<u16>,
    amqp_port: Option<u16>,
    https_port: Option<u16>,
    retry: RetryPolicy,
    timeout: Duration,
    token_ttl: Duration,
    proxy: Option<crate::Proxy>,
}

impl ServiceClientBuilder {
    /// How long the SAS tokens this client makes are valid (1 h by default); each is renewed
    /// in-band (`put-token`) at 75 % of its life.
    pub fn sas_token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// AMQP (default) or AMQP over WebSockets.
    pub fn transport(mut self, transport: ServiceTransport) -> Self {
        self.transport = transport;
        self
    }

    /// Trust only these PEM roots (a local hub's dev CA) instead of the platform's.
    pub fn trusted_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.trusted_ca_pem = Some(pem.into());
        self
    }

    /// The port of the chosen transport, for a hub not on 5671 / 443; it wins over
    /// [`amqp_port`](Self::amqp_port) and [`https_port`](Self::https_port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The port of [`ServiceTransport::Amqp`], for a hub not on 5671.
    pub fn amqp_port(mut self, port: u16) -> Self {
        self.amqp_port = Some(port);
        self
    }

    /// The HTTPS port of the registry, purge and [`ServiceTransport::AmqpWs`], for a hub not
    /// on 443.
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = Some(port);
        self
    }

    /// How connecting and sending are retried (exponential back-off with jitter by default).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long one attempt of an operation may take (30 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reaches the hub through this HTTP proxy (`CONNECT`): the registry, purge and feedback
    /// over REST, and AMQP over WebSockets, which a proxy needs ([`ServiceTransport::AmqpWs`]:
    /// `connect` refuses a proxy with plain AMQP). No proxy by default; the environment's
    /// only with [`Proxy::from_env`](crate::Proxy::from_env).
    pub fn proxy(mut self, proxy: crate::Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Connects (retrying as the policy says) and returns the client.
    pub async fn connect(self) -> Result<ServiceClient> {
        if self.proxy.is_some() && self.transport == ServiceTransport::Amqp {
            return Err(Error::invalid_argument(
                "a proxy carries WebSockets and HTTPS: use ServiceTransport::AmqpWs with it",
            ));
        }
        let tls = tls_config(self.trusted_ca_pem.as_deref())?;
        let registry = RegistryClient::new(
            &self.connection_string,
            RegistryOptions {
                trusted_ca_pem: self.trusted_ca_pem.clone(),
                endpoint: self.https_port.map(|p| format!("{}:{p}", self.host_name)),
                timeout: Some(self.timeout),
                proxy: self.proxy.clone(),
            },
        )?;
        let status_tx =
            StatusSender::new(ConnectionStatus::Disconnected("not connected yet".into()));
        let inner = Arc::new(Inner {
            config: self,
            tls,
            registry,
            link: tokio::sync::Mutex::new(None),
            feedback: Feedback::default(),
            status: status_tx,
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let client = ServiceClient { inner };
        {
            let mut link = client.inner.link.lock().await;
            let policy = client.inner.config.retry.clone();
            let opened = crate::retry::retry(&policy, || client.inner.open_link()).await?;
            *link = Some(opened);
        }
        Ok(client)
    }
}

struct SendLink {
    amqp: AmqpSession,
    sender: Sender,
    token_expiry: SystemTime,
    /// Tells this link from the one that replaces it after a failure.
    generation: u64,
}

/// Numbers the send links a process opens.
static LINK_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Default)]
struct Feedback {
    /// Waiters of `outcome()`, by message id.
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<FeedbackRecord>>>>,
    /// Records that arrived recently, for `outcome()` calls that come after them.
    recent: Mutex<(HashMap<String, FeedbackRecord>, VecDeque<String>)>,
    /// Every record, to each `feedback()` subscriber.
    stream: Mutex<Option<broadcast::Sender<FeedbackRecord>>>,
    /// The pump task, once started.
    pump: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Asks the pump to stop between two feedback messages, so that a message whose records
    /// it has handed out is also settled (else the hub gives the batch to the next reader).
    stop: Arc<tokio::sync::Notify>,
}

struct Inner {
    config: ServiceClientBuilder,
    tls: Arc<rustls::ClientConfig>,
    registry: RegistryClient,
    link: tokio::sync::Mutex<Option<SendLink>>,
    feedback: Feedback,
    status: StatusSender,
    closed: std::sync::atomic::AtomicBool,
}

/// A back-end's client of the hub. Cheap to clone; every clone shares one connection and one
/// feedback pump.
#[derive(Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("host", &self.inner.config.host_name)
            .finish_non_exhaustive()
    }
}

/// A sent message: its id, and a way to wait for its own feedback.
#[derive(Debug, Clone)]
pub struct SentMessage {
    message_id: String,
    ack: Ack,
    client: ServiceClient,
}

#[cfg(any())]
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The error a `rejected` send outcome stands for.
fn rejection(condition: &ErrorCondition, description: Option<&str>) -> Error {
    let text = description.unwrap_or("no description").to_string();
    let kind = match condition {
        ErrorCondition::AmqpError(AmqpError::NotFound) => ErrorKind::DeviceNotFound,
        ErrorCondition::AmqpError(AmqpError::ResourceLimitExceeded) => ErrorKind::QueueFull,
        ErrorCondition::LinkError(LinkError::MessageSizeExceeded) => ErrorKind::MessageTooLarge,
        ErrorCondition::AmqpError(AmqpError::UnauthorizedAccess) => ErrorKind::Unauthorized,
        ErrorCondition::AmqpError(AmqpError::InternalError)
        | ErrorCondition::LinkError(LinkError::DetachForced) => ErrorKind::Unavailable,
        ErrorCondition::Custom(s) if s.0.contains("throttl") || s.0.contains("quota") => {
            ErrorKind::Throttled
        }
        ErrorCondition::Custom(s) if s.0.contains("timeout") => ErrorKind::Timeout,
        _ => ErrorKind::Protocol,
    };
    Error::new(
        kind,
        format!("the hub refused the message ({condition:?}): {text}"),
    )
}

impl Inner {
    fn token(&self) -> Result<(String, SystemTime)> {
        let expiry = SystemTime::now() + self.config.token_ttl;
        let secs = expiry.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let token = crate::sas::generate_token(
            &self.config.host_name,
            &self.config.key,
            Some(&self.config.key_name),
            secs,
        )?;
        Ok((token, expiry))
    }

    fn port(&self) -> u16 {
        self.config.port.unwrap_or(match self.config.transport {
            ServiceTransport::Amqp => self.config.amqp_port.unwrap_or(5671),
            ServiceTransport::AmqpWs => self.config.https_port.unwrap_or(443),
        })
    }

    /// A connection authorized by CBS, with the C2D sender link attached.
    async fn open_link(&self) -> Result<SendLink> {
        self.check_open()?;
        self.status.send(ConnectionStatus::Reconnecting);
        let result: Result<SendLink> = async {
            let mut amqp = self.open_session().await?;
            let expiry = self.authorize(&mut amqp).await?;
            let sender = Sender::attach(
                &mut amqp.session,
                format!("c2d-send-{}", uuid::Uuid::new_v4()),
                "/messages/devicebound",
            )
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("attaching /messages/devicebound: {e:?}"),
                )
            })?;
            Ok(SendLink {
                amqp,
                sender,
                token_expiry: expiry,
                generation: LINK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            })
        }
        .await;
        match &result {
            Ok(_) => {
                self.status.send(ConnectionStatus::Connected);
            }
            Err(e) => {
                self.status
                    .send(ConnectionStatus::Disconnected(e.to_string()));
            }
        }
        result
    }

    async fn open_session(&self) -> Result<AmqpSession> {
        let websocket = self.config.transport == ServiceTransport::AmqpWs;
        AmqpSession::open(
            &self.config.host_name,
            self.port(),
            websocket,
            self.tls.clone(),
            self.config.timeout,
            self.config.proxy.as_ref(),
        )
        .await
    }

    async fn authorize(&self, amqp: &mut AmqpSession) -> Result<SystemTime> {
        let (token, expiry) = self.token()?;
        amqp.put_token(&self.config.host_name, &token, self.config.timeout)
            .await?;
        Ok(expiry)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            Err(Error::new(
                ErrorKind::Closed,
                "the service client was closed",
            ))
        } else {
            Ok(())
        }
    }

    /// Drops the send link if it is still the one of `generation` (the next send reconnects).
    async fn forget_link(&self, generation: u64) {
        let mut guard = self.link.lock().await;
        if guard.as_ref().is_some_and(|l| l.generation == generation) {
            *guard = None;
        }
    }

    /// Returns once the link of `generation` is gone: its connection has stopped, or another
    /// send found it broken and let it go.
    async fn link_gone(&self, generation: u64) {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let guard = self.link.lock().await;
            match &*guard {
                Some(l) if l.generation == generation && !l.amqp.connection.is_closed() => {}
                _ => return,
            }
        }
    }

    /// The error for a lost link, also reported as the connection status.
    fn lost(&self, what: String) -> Error {
        let e = Error::new(ErrorKind::Unavailable, what);
        self.status
            .send(ConnectionStatus::Disconnected(e.to_string()));
        e
    }

    /// One attempt to send: (re)connect if needed, renew the token if it is near its end, send
    /// and wait for the hub's answer. The link is held only while the
    /// transfer is written: the answer is awaited without it, so that concurrent sends are in
    /// flight together (the hub commits them together).
    async fn send_once(&self, amqp_message: &crate::amqp::AmqpMessage) -> Result<()> {
        let (delivery, generation) = {
            let mut guard = self.link.lock().await;
            if guard.is_none() {
                *guard = Some(self.open_link().await?);
            }
            let link = guard.as_mut().expect("set above");
            if link.token_expiry <= SystemTime::now() + self.config.token_ttl / 4 {
                let (token, expiry) = self.token()?;
                link.amqp
                    .put_token(&self.config.host_name, &token, self.config.timeout)
                    .await?;
                link.token_expiry = expiry;
            }
            let written = tokio::time::timeout(
                self.config.timeout,
                link.sender.send_batchable(amqp_message.clone()),
            )
            .await;
            match written {
                Ok(Ok(delivery)) => (delivery, link.generation),
                Ok(Err(e)) => {
                    // the link or connection is gone: forget it, the retry reconnects
                    *guard = None;
                    return Err(self.lost(format!("sending: {e:?}")));
                }
                Err(_) => {
                    *guard = None;
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("no room to send within {:?}", self.config.timeout),
                    ));
                }
            }
        };
        let answered = tokio::select! {
            answered = tokio::time::timeout(self.config.timeout, delivery) => answered,
            () = self.link_gone(generation) => {
                // fe2o3 leaves a delivery unanswered when its connection dies: without this
                // the send would wait out the whole timeout
                self.forget_link(generation).await;
                return Err(self.lost("the connection was lost before the hub answered".into()));
            }
        };
        let outcome = match answered {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                self.forget_link(generation).await;
                return Err(self.lost(format!("sending: {e:?}")));
            }
            Err(_) => {
                self.forget_link(generation).await;
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no answer to a send within {:?}", self.config.timeout),
                ));
            }
        };
        match outcome {
            Outcome::Accepted(_) => Ok(()),
            Outcome::Rejected(r) => Err(match r.error {
                Some(e) => rejection(&e.condition, e.description.as_deref()),
                None => Error::new(
                    ErrorKind::Protocol,
                    "the hub rejected the message without a reason",
                ),
            }),
            Outcome::Released(_) | Outcome::Modified(_) => Err(Error::new(
                ErrorKind::Unavailable,
                "the hub released the message without taking it",
            )),
            #[allow(unreachable_patterns)]
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("unexpected outcome {other:?}"),
            )),
        }
    }

    /// Hands a feedback record to its waiters, the recent cache and the subscribers.
    fn dispatch(&self, record: FeedbackRecord) {
        let f = &self.feedback;
        let waiters = f
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&record.original_message_id);
        for w in waiters.into_iter().flatten() {
            let _ = w.send(record.clone());
        }
        {
            let mut recent = f.recent.lock().unwrap_or_else(|e| e.into_inner());
            let (map, order) = &mut *recent;
            if map
                .insert(record.original_message_id.clone(), record.clone())
                .is_none()
            {
                order.push_back(record.original_message_id.clone());
            }
            while order.len() > RECENT_RECORDS {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        if let Some(tx) = f.stream.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(record);
        }
    }
}

/// Reads the hub-wide feedback queue for the client's lifetime, reconnecting as needed.
async fn feedback_pump(inner: std::sync::Weak<Inner>, stop: Arc<tokio::sync::Notify>) {
    let mut attempt = 0u32;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.check_open().is_err() {
            return;
        }
        let result = async {
            let mut amqp = strong.open_session().await?;
            let expiry = strong.authorize(&mut amqp).await?;
            let receiver = Receiver::attach(
                &mut amqp.session,
                format!("c2d-feedback-{}", uuid::Uuid::new_v4()),
                "/messages/serviceBound/feedback",
            )
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("attaching the feedback link: {e:?}"),
                )
            })?;
            Ok::<_, Error>((amqp, receiver, expiry))
        }
        .await;
        let (mut amqp, mut receiver, mut expiry) = match result {
            Ok(x) => x,
            Err(e) => {
                attempt += 1;
                let delay = strong.config.retry.next_delay(attempt, &e);
                drop(strong);
                match delay {
                    Some(d) => {
                        tokio::select! {
                            _ = tokio::time::sleep(d) => continue,
                            _ = stop.notified() => return,
                        }
                    }
                    None => {
                        tracing::warn!(error = %e, "c2d: the feedback pump stopped");
                        return;
                    }
                }
            }
        };
        attempt = 0;
        let strong_ttl = strong.config.token_ttl;
        drop(strong);
        loop {
            let renew_at = expiry - strong_ttl / 4;
            let wait = renew_at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                d = receiver.recv::<Body<Value>>() => {
                    let Some(strong) = inner.upgrade() else { return };
                    let delivery = match d {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::debug!(error = ?e, "c2d: feedback link lost; reconnecting");
                            break;
                        }
                    };
                    let body: Vec<u8> = match delivery.body() {
                        Body::Data(d) => d.iter().flat_map(|x| x.0.iter().copied()).collect(),
                        _ => Vec::new(),
                    };
                    match decode_batch(&body) {
                        Ok(records) => {
                            for r in records {
                                strong.dispatch(r);
                            }
                            let _ = receiver.accept(&delivery).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "c2d: undecodable feedback message rejected");
                            let _ = receiver.reject(&delivery, None).await;
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    let Some(strong) = inner.upgrade() else { return };
                    match strong.authorize(&mut amqp).await {
                        Ok(e) => expiry = e,
                        Err(_) => break,
                    }
                }
                _ = stop.notified() => {
                    let _ = receiver.close().await;
                    amqp.close().await;
                    return;
                }
            }
        }
        let _ = receiver.close().await;
        amqp.close().await;
    }
}

impl ServiceClient {
    /// Starts building a client from a service connection string
    /// (`HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`).
    pub fn builder(connection_string: &str) -> Result<ServiceClientBuilder> {
        crate::tls::install_crypto_provider();
        let cs = ConnectionString::parse_service(connection_string)?;
        let (key_name, key) = match cs.credential {
            Credential::SharedAccessKey {
                key_name: Some(n),
                key,
            } => (n, key),
            _ => {
                return Err(Error::invalid_argument(
                    "a service connection string needs SharedAccessKeyName and SharedAccessKey",
                ))
            }
        };
        Ok(ServiceClientBuilder {
            host_name: cs.host_name,
            key_name,
            key,
            connection_string: connection_string.to_string(),
            transport: ServiceTransport::Amqp,
            trusted_ca_pem: None,
            port: None,
            amqp_port: None,
            https_port: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            token_ttl: TOKEN_TTL,
            proxy: None,
        })
    }

    /// Sends a message to a device. A message id is generated when the message has none (so
    /// that its feedback can be matched); `to` is set to the device's address. Errors that
    /// retrying cannot fix (device not found, queue full, too large, unauthorized) are
    /// returned at once; others are retried as the client's policy says.
    pub async fn send(&self, device_id: &str, message: Message) -> Result<SentMessage> {
        self.inner.check_open()?;
        crate::identity::validate_id(device_id).map_err(Error::invalid_argument)?;
        let mut message = message;
        message.to = Some(device_bound_address(device_id));
        let id = message
            .message_id
            .get_or_insert_with(|| MessageId::String(uuid::Uuid::new_v4().to_string()))
            .to_string();
        let ack = message.ack_mode();
        let amqp = crate::amqp::from_c2d(&message);
        let inner = self.inner.clone();
        crate::retry::retry(&self.inner.config.retry, || inner.send_once(&amqp)).await?;
        Ok(SentMessage {
            message_id: id,
            ack,
            client: self.clone(),
        })
    }

    fn start_pump(&self) -> Result<()> {
        let mut pump = self
            .inner
            .feedback
            .pump
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pump.is_none() {
            *pump = Some(crate::runtime::spawn(feedback_pump(
                Arc::downgrade(&self.inner),
                self.inner.feedback.stop.clone(),
            ))?);
        }
        Ok(())
    }

    /// Every feedback record from now on (the hub's feedback queue is read by one pump per
    /// client; each subscriber gets every record).
    pub fn feedback(&self) -> Result<FeedbackReceiver> {
        self.inner.check_open()?;
        let rx = {
            let mut stream = self
                .inner
                .feedback
                .stream
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            stream
                .get_or_insert_with(|| broadcast::channel(4096).0)
                .subscribe()
        };
        self.start_pump()?;
        Ok(FeedbackReceiver {
            rx,
            client: self.clone(),
        })
    }

    /// Removes every message queued for a device.
    pub async fn purge(&self, device_id: &str) -> Result<PurgeResult> {
        self.inner.check_open()?;
        self.inner.registry.purge_queue(device_id).await
    }

    /// The identity registry (REST), authorized by this client's policy.
    pub fn registry(&self) -> &RegistryClient {
        &self.inner.registry
    }

    /// Connection status changes.
    pub fn status(&self) -> StatusReceiver {
        self.inner.status.subscribe()
    }

    /// Closes the connection and stops the feedback pump; waiting calls end with `Closed`.
    pub async fn close(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let pump = self
            .inner
            .feedback
            .pump
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut p) = pump {
            // the feedback message being handled is settled first; a pump stuck on a dead
            // connection is not waited for long
            self.inner.feedback.stop.notify_one();
            if tokio::time::timeout(PUMP_STOP, &mut p).await.is_err() {
                p.abort();
            }
        }
        self.inner
            .feedback
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.inner
            .feedback
            .stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(link) = self.inner.link.lock().await.take() {
            let _ = link.sender.close().await;
            link.amqp.close().await;
        }
        self.inner
            .status
            .send(ConnectionStatus::Disconnected("closed".into()));
    }
}

impl SentMessage {
    /// The message's id (generated when the message had none).
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// Waits for this message's own feedback record. The message's `ack` decides which
    /// outcomes produce one: with `positive`, a rejected message produces none, and with
    /// `negative` a completed one produces none; wrap the call in a timeout for those.
    ///
    /// The records come from the hub's one feedback endpoint, which IoT Hub gives to one
    /// reader at a time: two service clients open on one hub take records from each other, so
    /// a record can reach the client that did not send its message, and this wait then lasts
    /// for ever. Keep one client per hub, or close one before opening the next.
    ///
    /// The hub batches the records: one made after a quiet feedback interval (IoT Hub: about
    /// 15 s) goes out at once, the next ones once that interval has passed since the batch
    /// before. A local hub on a manual clock (`c2d_hub::ManualClock`, in tests) counts that
    /// interval on its clock: a second outcome comes only after the test advances the clock
    /// past it.
    pub async fn outcome(&self) -> Result<FeedbackRecord> {
        if self.ack == Ack::None {
            return Err(Error::invalid_argument(
                "the message was sent with ack=none: no feedback will come",
            ));
        }
        let inner = &self.client.inner;
        inner.check_open()?;
        let rx = {
            let mut waiters = inner
                .feedback
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(r) = inner
                .feedback
                .recent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .get(&self.message_id)
            {
                return Ok(r.clone());
            }
            let (tx, rx) = oneshot::channel();
            waiters.entry(self.message_id.clone()).or_default().push(tx);
            rx
        };
        self.client.start_pump()?;
        rx.await
            .map_err(|_| Error::new(ErrorKind::Closed, "the service client was closed"))
    }
}

/// A subscription to every feedback record.
#[derive(Debug)]
pub struct FeedbackReceiver {
    rx: broadcast::Receiver<FeedbackRecord>,
    client: ServiceClient,
}

impl FeedbackReceiver {
    /// The next record; `None` once the client is closed.
    pub async fn recv(&mut self) -> Option<FeedbackRecord> {
        loop {
            match self.rx.recv().await {
                Ok(r) => return Some(r),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        skipped = n,
                        "c2d: a slow feedback subscriber missed records"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The client this subscription belongs to.
    pub fn client(&self) -> &ServiceClient {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fe2o3_amqp::types::primitives::Symbol;

    #[test]
    fn rejections_map_to_error_kinds() {
        let k = |c: ErrorCondition| rejection(&c, None).kind();
        assert_eq!(k(AmqpError::NotFound.into()), ErrorKind::DeviceNotFound);
        assert_eq!(
            k(AmqpError::ResourceLimitExceeded.into()),
            ErrorKind::QueueFull
        );
        assert_eq!(
            k(LinkError::MessageSizeExceeded.into()),
            ErrorKind::MessageTooLarge
        );
        assert_eq!(
            k(AmqpError::UnauthorizedAccess.into()),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            k(ErrorCondition::Custom(Symbol::from(
                "com.microsoft:device-container-throttled"
            ))),
            ErrorKind::Throttled
        );
        assert_eq!(k(AmqpError::InternalError.into()), ErrorKind::Unavailable);
        assert_eq!(k(AmqpError::DecodeError.into()), ErrorKind::Protocol);
    }
}
