//! The device client: receive the C2D messages queued for a device and complete, reject or
//! abandon each one, over MQTT, MQTT over WebSockets, AMQP, AMQP over WebSockets, or HTTPS
//! polling.
//!
//! A connection task on the engine's runtime keeps the device connected: it reconnects (and
//! subscribes or attaches again) as the retry policy says, renews the SAS token before it
//! expires, and reports each change of [`ConnectionStatus`]. Over HTTPS the task polls
//! instead, and "connected" means the last request reached the hub.

#[cfg(feature = "amqp")]
pub(crate) mod amqp;
mod duplicates;
#[cfg(feature = "https")]
pub(crate) mod https;
#[cfg(feature = "mqtt")]
pub(crate) mod mqtt;
mod options;

pub use duplicates::DuplicateOptions;
pub use options::{DeviceClientBuilder, DeviceOptions, Transport, DEFAULT_POLL_INTERVAL};

use duplicates::Duplicates;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::connection_string::{ConnectionString, Credential};
use crate::error::{Error, ErrorKind, Result};
use crate::message::Message;
use crate::retry::RetryPolicy;
use crate::status::{ConnectionStatus, StatusReceiver, StatusSender};

/// How a received message is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Done: the hub removes the message (`Success` feedback if asked).
    Complete,
    /// Dead-lettered (`Rejected` feedback). Not over MQTT.
    Reject,
    /// Back to the queue, delivery count + 1. Not over MQTT.
    Abandon,
}

impl Settlement {
    /// The name c2d uses for it (`complete`, `reject`, `abandon`).
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Complete => "complete",
            Settlement::Reject => "reject",
            Settlement::Abandon => "abandon",
        }
    }
}

impl Transport {
    /// Whether a message received over this transport can be settled `how`: MQTT 3.1.1 can
    /// only complete (its PUBACK carries no outcome); the other transports can do all three.
    pub fn can_settle(self, how: Settlement) -> bool {
        how == Settlement::Complete || !matches!(self, Transport::Mqtt | Transport::MqttWs)
    }

    /// Whether a settlement over this transport is a frame the hub does not answer (MQTT's
    /// PUBACK; AMQP's disposition, which the device sends settled), so that settling is done
    /// once the frame is queued: everything but HTTPS, whose settlement is a request.
    pub fn settles_unanswered(self) -> bool {
        self != Transport::Https
    }
}

/// What the connection task is asked to do.
// only the MQTT task reads every epoch (HTTPS settles by lock token alone)
#[cfg_attr(not(feature = "mqtt"), allow(dead_code))]
pub(crate) enum Command {
    /// `reply` is `None` for a settlement the hub does not answer, which the caller was told
    /// was done once it was queued (see [`Transport::settles_unanswered`]).
    Settle {
        epoch: u64,
        id: u64,
        how: Settlement,
        reply: Option<oneshot::Sender<Result<()>>>,
    },
    /// The application let go of a message without settling it.
    GiveUp { epoch: u64, id: u64 },
    /// Close gracefully (settlements already sent reach the hub), then end the task.
    Close { done: oneshot::Sender<()> },
}

/// Answers a settlement's caller; one that was not waiting (a settlement the hub does not
/// answer, already reported done) hears nothing, and a failure is logged: the hub delivers
/// that message again, as it would had the frame been lost on the way.
pub(crate) fn answer(reply: Option<oneshot::Sender<Result<()>>>, result: Result<()>) {
    match (reply, result) {
        (Some(reply), result) => {
            let _ = reply.send(result);
        }
        (None, Err(e)) => {
            tracing::debug!(error = %e, "c2d device: a queued settlement was not sent")
        }
        (None, Ok(())) => {}
    }
}

/// The IoT Hub lock on a delivered message (fixed at one minute for MQTT and AMQP).
pub(crate) const LOCK: Duration = Duration::from_secs(60);

impl DeviceClientBuilder {
    /// Checks the options, then connects (retrying as the policy says) and starts receiving.
    pub async fn connect(self) -> Result<DeviceClient> {
        let this = self.checked();
        let o = &this.options;
        if !o.transport.is_available() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "this build of c2d was made without the {} transport",
                    o.transport
                ),
            ));
        }
        if o.connection.proxy.is_some() && matches!(o.transport, Transport::Mqtt | Transport::Amqp)
        {
            return Err(Error::invalid_argument(format!(
                "a proxy carries WebSockets and HTTPS: use mqtt_ws, amqp_ws or https with it, not {}",
                o.transport
            )));
        }
        let identity = o
            .client_certificate
            .as_ref()
            .map(crate::tls::ClientCertificate::identity)
            .transpose()?;
        // neither a key nor a token: the connection string says x509=true
        if this.key.is_none() && this.fixed_token.is_none() && identity.is_none() {
            return Err(Error::invalid_argument(
                "the connection string says x509=true: give the device's certificate and key (client_certificate)",
            ));
        }
        let ca = o.connection.trusted_ca_pem()?;
        let tls: Arc<rustls::ClientConfig> =
            crate::tls::client_config(ca.as_deref(), identity.as_ref())?;
        DeviceClient::start(this, tls).await
    }
}

/// Aborts a task when dropped, unless disarmed.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl AbortOnDrop {
    fn disarm(mut self) -> tokio::task::JoinHandle<()> {
        self.0.take().expect("armed until disarmed")
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// What a connection task owns.
pub(crate) struct Link {
    pub config: DeviceClientBuilder,
    pub tls: Arc<rustls::ClientConfig>,
    pub messages: mpsc::UnboundedSender<ReceivedMessage>,
    /// Where a message put back goes (see [`ReceivedMessage::put_back`]).
    pub put_back: mpsc::UnboundedSender<ReceivedMessage>,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub commands_tx: mpsc::UnboundedSender<Command>,
    pub status: StatusSender,
    /// Answered once, with the first connection's result.
    pub first: Option<oneshot::Sender<Result<()>>>,
    /// The error that stopped the task for good.
    pub fatal: Arc<Mutex<Option<Error>>>,
    /// The epoch of the connection that is up, 0 while there is none: a message of another
    /// epoch can no longer be settled.
    pub live: Arc<AtomicU64>,
    /// The window of settled message ids, when duplicates are suppressed.
    pub duplicates: Option<Arc<Duplicates>>,
}

/// What a received message holds, as its transport read it: readable before and after it
/// is settled ([`ReceivedMessage::delivered`], [`SettleOnce::delivered`]).
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The message: body, system and application properties.
    pub message: Message,
    /// Abandons before this delivery (AMQP and HTTPS; 0 over MQTT, which does not say).
    pub delivery_count: u32,
    /// When the hub accepted the message (AMQP and HTTPS).
    pub enqueued_time: Option<SystemTime>,
    /// The hub's sequence number (AMQP and HTTPS).
    pub sequence_number: Option<u64>,
    /// The lock token (AMQP, and HTTPS's ETag).
    pub lock_token: Option<String>,
}

impl Link {
    /// Hands delivery `id` of connection `epoch` to the application; false once the client
    /// is gone.
    pub fn hand_over(&self, epoch: u64, id: u64, d: Delivered) -> bool {
        let m = ReceivedMessage {
            delivered: d,
            transport: self.config.options.transport,
            epoch,
            id,
            received: tokio::time::Instant::now(),
            live: self.live.clone(),
            commands: Some(self.commands_tx.clone()),
            inbox: self.put_back.clone(),
            duplicates: self.duplicates.clone(),
        };
        match m.unless_duplicate() {
            Some(m) => self.messages.send(m).is_ok(),
            None => true,
        }
    }

    /// Records a connection failure; returns the wait before the next attempt, or `None`
    /// (after recording the error as fatal) when the task must stop.
    pub fn failed(&mut self, attempt: u32, e: Error) -> Option<Duration> {
        // the first failure of a series is worth a word (a refused WebSocket upgrade, a hub
        // that is down); the retries after it repeat it
        if attempt == 1 {
            tracing::warn!(error = %e, "c2d device: connection failed");
        } else {
            tracing::debug!(error = %e, attempt, "c2d device: connection failed again");
        }
        self.status
            .send(ConnectionStatus::Disconnected(e.to_string()));
        if let Some(first) = self.first.take() {
            // the first connection fails fast: the caller retries `connect` if it wants to
            if !e.is_transient()
                || matches!(self.config.options.connection.retry, RetryPolicy::None)
            {
                let _ = first.send(Err(e));
                return None;
            }
            self.first = Some(first);
        }
        match self.config.options.connection.retry.next_delay(attempt, &e) {
            Some(d) => {
                self.status.send(ConnectionStatus::Reconnecting);
                Some(d)
            }
            None => {
                tracing::warn!(error = %e, attempt, "c2d device: connection failed for good");
                if let Some(first) = self.first.take() {
                    let _ = first.send(Err(e.clone()));
                }
                *self.fatal.lock().unwrap_or_else(|x| x.into_inner()) = Some(e);
                None
            }
        }
    }

    /// Records that the connection of `epoch` is up (0: none is), for the settlements made
    /// without waiting for this task.
    pub fn live(&self, epoch: u64) {
        self.live.store(epoch, Ordering::Release);
    }

    /// Records a successful connection.
    pub fn connected(&mut self) {
        self.status.send(ConnectionStatus::Connected);
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
    }
}

/// What `recv` reads: messages put back first, then those the connection task delivers.
struct Inbox {
    put_back: mpsc::UnboundedReceiver<ReceivedMessage>,
    delivered: mpsc::UnboundedReceiver<ReceivedMessage>,
}

struct DeviceInner {
    /// A tokio mutex: one `recv` at a time waits on the channels, across `.await`.
    inbox: tokio::sync::Mutex<Inbox>,
    status: StatusSender,
    fatal: Arc<Mutex<Option<Error>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    commands: mpsc::UnboundedSender<Command>,
    transport: Transport,
    duplicates: Option<Arc<Duplicates>>,
}

/// A device's connection to its hub. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct DeviceClient {
    inner: Arc<DeviceInner>,
}

impl std::fmt::Debug for DeviceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceClient")
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

impl DeviceClient {
    /// Starts building a client from a device connection string
    /// (`HostName=…;DeviceId=…;SharedAccessKey=…[;GatewayHostName=…]`, or `…;x509=true` with
    /// [`client_certificate`](DeviceClientBuilder::client_certificate)).
    pub fn builder(connection_string: &str) -> Result<DeviceClientBuilder> {
        crate::tls::install_crypto_provider();
        let cs = ConnectionString::parse_device(connection_string)?;
        if cs.module_id.is_some() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "modules do not receive C2D messages",
            ));
        }
        let (key, fixed_token) = match &cs.credential {
            Credential::SharedAccessKey { key_name: None, key } => (Some(key.clone()), None),
            Credential::SharedAccessSignature(t) => (None, Some(t.clone())),
            Credential::SharedAccessKey { key_name: Some(_), .. } => {
                return Err(Error::new(ErrorKind::Unsupported, "device connection strings with SharedAccessKeyName are not supported; use the device's own key"))
            }
            Credential::X509 => (None, None),
        };
        Ok(DeviceClientBuilder {
            connect_host: cs.connect_host().to_string(),
            host_name: cs.host_name.clone(),
            device_id: cs
                .device_id
                .clone()
                .expect("a device connection string has a DeviceId"),
            key,
            fixed_token,
            options: DeviceOptions::default(),
        })
    }

    /// Starts the connection task of `config` and waits for its first connection.
    pub(crate) async fn start(
        config: DeviceClientBuilder,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<DeviceClient> {
        let (messages_tx, messages_rx) = mpsc::unbounded_channel();
        let (put_back_tx, put_back_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let status_tx = StatusSender::new(ConnectionStatus::Reconnecting);
        let (first_tx, first_rx) = oneshot::channel();
        let fatal = Arc::new(Mutex::new(None));
        let duplicates = match &config.options.duplicates {
            Some(options) => Some(Arc::new(Duplicates::open(options.clone())?)),
            None => None,
        };
        let link = Link {
            config: config.clone(),
            tls,
            messages: messages_tx,
            put_back: put_back_tx,
            commands: commands_rx,
            commands_tx: commands_tx.clone(),
            status: status_tx.clone(),
            first: Some(first_tx),
            fatal: fatal.clone(),
            live: Arc::new(AtomicU64::new(0)),
            duplicates: duplicates.clone(),
        };
        let task = match config.options.transport {
            #[cfg(feature = "mqtt")]
            Transport::Mqtt | Transport::MqttWs => crate::runtime::spawn(mqtt::run(link))?,
            #[cfg(feature = "amqp")]
            Transport::Amqp | Transport::AmqpWs => crate::runtime::spawn(amqp::run(link))?,
            #[cfg(feature = "https")]
            Transport::Https => crate::runtime::spawn(https::run(link))?,
            // refused above: is_available
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "no such transport in this build",
                ))
            }
        };
        // a connect that is cancelled (dropped while it waits) stops its connection task
        let guard = AbortOnDrop(Some(task));
        let first = first_rx.await;
        let task = guard.disarm();
        match first {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                task.abort();
                return Err(e);
            }
            Err(_) => return Err(Error::new(ErrorKind::Internal, "the connection task ended")),
        }
        Ok(DeviceClient {
            inner: Arc::new(DeviceInner {
                inbox: tokio::sync::Mutex::new(Inbox {
                    put_back: put_back_rx,
                    delivered: messages_rx,
                }),
                status: status_tx,
                fatal,
                task: Mutex::new(Some(task)),
                commands: commands_tx,
                transport: config.options.transport,
                duplicates,
            }),
        })
    }

    /// The next message; `None` once the client is closed. An error when the connection
    /// was lost for good (credentials refused, retries exhausted).
    ///
    /// Cancel safe: a `recv` dropped before it returns (a timeout, a `select!` that took
    /// another branch, an aborted task) takes no message: the message that arrives next is
    /// the next `recv`'s. Messages [put back](ReceivedMessage::put_back) come first.
    ///
    /// With duplicates suppressed ([`DeviceOptions::duplicates`]), a message the application
    /// already completed or rejected is settled so again here and not returned.
    pub async fn recv(&self) -> Result<Option<ReceivedMessage>> {
        let mut inbox = self.inner.inbox.lock().await;
        let Inbox {
            put_back,
            delivered,
        } = &mut *inbox;
        let next = loop {
            let next = tokio::select! {
                biased;
                Some(m) = put_back.recv() => Some(m),
                m = delivered.recv() => m,
            };
            // (checked on arrival too: this catches a second copy that arrived before the
            // application settled the first)
            match next.map(ReceivedMessage::unless_duplicate) {
                Some(None) => continue,
                Some(Some(m)) => break Some(m),
                None => break None,
            }
        };
        match next {
            Some(m) => Ok(Some(m)),
            None => match self
                .inner
                .fatal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                Some(e) => Err(e),
                None => Ok(None),
            },
        }
    }

    /// How many duplicates were settled without being handed over since the client
    /// connected (0 when duplicates are not suppressed).
    pub fn duplicates_suppressed(&self) -> u64 {
        self.inner
            .duplicates
            .as_ref()
            .map_or(0, |d| d.suppressed_count())
    }

    /// What [`recv`](Self::recv) returns if it can without waiting: `None` when no message
    /// has arrived (or another `recv` is waiting). For callers on another thread than the
    /// engine's, a message the client already holds is theirs without a thread hop.
    pub fn try_recv(&self) -> Option<Result<Option<ReceivedMessage>>> {
        use futures_util::FutureExt;
        // polled once; dropped if not ready, which takes nothing (recv is cancel safe)
        self.recv().now_or_never()
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// Connection status changes.
    pub fn status(&self) -> StatusReceiver {
        self.inner.status.subscribe()
    }

    /// Disconnects, after the settlements already made have reached the hub. Messages
    /// received and not settled go back to the hub's queue (over HTTPS, when their lock ends:
    /// HTTPS has no connection whose end releases them).
    pub async fn close(&self) {
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = task {
            let (done, closed) = oneshot::channel();
            if self.inner.commands.send(Command::Close { done }).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), closed).await;
            }
            t.abort();
            let _ = t.await;
        }
        if let Some(d) = &self.inner.duplicates {
            d.sync();
        }
        self.inner
            .status
            .send(ConnectionStatus::Disconnected("closed".into()));
    }
}

/// A received message, to be settled once with [`complete`](Self::complete),
/// [`reject`](Self::reject) or [`abandon`](Self::abandon).
#[derive(Debug)]
pub struct ReceivedMessage {
    delivered: Delivered,
    transport: Transport,
    epoch: u64,
    id: u64,
    /// When it arrived: its lock (MQTT, AMQP) runs from then.
    received: tokio::time::Instant,
    /// The epoch of the connection that is up (see [`Link::live`]).
    live: Arc<AtomicU64>,
    /// Taken by the settlement; still here when the message is dropped unsettled.
    commands: Option<mpsc::UnboundedSender<Command>>,
    /// Its client's queue of messages put back.
    inbox: mpsc::UnboundedSender<ReceivedMessage>,
    /// Its client's window of settled ids, when duplicates are suppressed.
    duplicates: Option<Arc<Duplicates>>,
}

impl Drop for ReceivedMessage {
    /// An unsettled message is given up: it stays locked at the hub and comes back when its
    /// lock ends (over MQTT, it no longer holds back the PUBACKs of later messages).
    fn drop(&mut self) {
        if let Some(commands) = self.commands.take() {
            let _ = commands.send(Command::GiveUp {
                epoch: self.epoch,
                id: self.id,
            });
        }
    }
}

impl ReceivedMessage {
    /// What it holds: the message, its delivery count, enqueued time, sequence number and
    /// lock token.
    pub fn delivered(&self) -> &Delivered {
        &self.delivered
    }

    /// The message: body, system and application properties.
    pub fn message(&self) -> &Message {
        &self.delivered.message
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.delivered.message.body
    }

    /// [`Delivered::delivery_count`].
    pub fn delivery_count(&self) -> u32 {
        self.delivered.delivery_count
    }

    /// [`Delivered::enqueued_time`].
    pub fn enqueued_time(&self) -> Option<SystemTime> {
        self.delivered.enqueued_time
    }

    /// [`Delivered::sequence_number`].
    pub fn sequence_number(&self) -> Option<u64> {
        self.delivered.sequence_number
    }

    /// [`Delivered::lock_token`].
    pub fn lock_token(&self) -> Option<&str> {
        self.delivered.lock_token.as_deref()
    }

    /// Whether this message can be settled `how`: over MQTT only
    /// [`complete`](Self::complete) can. Settling consumes the message, so check this before
    /// a reject or abandon that may fall back to completing (an MQTT reject fails with
    /// [`ErrorKind::Unsupported`], and the message is then given up as if dropped).
    pub fn supports(&self, how: Settlement) -> bool {
        self.transport.can_settle(how)
    }

    /// The transport that delivered the message.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Hands the message back, unsettled, to the client that received it: its next
    /// [`recv`](DeviceClient::recv) returns it again, before anything newer. For code that
    /// took a message for a caller who is no longer there to have it (a cancelled wait); the
    /// message keeps its lock, and over MQTT its place among the PUBACKs.
    pub fn put_back(self) {
        let inbox = self.inbox.clone();
        // a client that is gone drops it, which gives it up
        let _ = inbox.send(self);
    }

    /// Settles the message `how`: [`complete`](Self::complete), [`reject`](Self::reject)
    /// or [`abandon`](Self::abandon). Over MQTT and AMQP the settlement is a frame the hub
    /// does not answer, and this returns once it is queued, after checking what would stop
    /// it (the connection that delivered the message is gone, its lock ended): a connection
    /// lost before the frame is written means the hub delivers the message again, as when
    /// the frame is lost on the way. Over HTTPS it returns with the hub's answer.
    pub async fn settle(mut self, how: Settlement) -> Result<()> {
        match self.settle_unanswered(how) {
            Some(result) => result,
            None => self.request(how).await,
        }
    }

    /// Settles the message `how` without waiting, where the transport's settlement needs no
    /// answer from the hub (MQTT, AMQP: see [`settle`](Self::settle)); `None`, and nothing
    /// done, over HTTPS. A message whose lock ended is left to be dropped, which gives it up.
    fn settle_unanswered(&mut self, how: Settlement) -> Option<Result<()>> {
        if !self.transport.settles_unanswered() {
            return None;
        }
        if !self.supports(how) {
            return Some(Err(unsupported(self.transport, how)));
        }
        self.remember(how);
        if self.live.load(Ordering::Acquire) != self.epoch {
            // its connection is gone: the hub delivers it again
            self.commands = None;
            return Some(Err(Error::new(
                ErrorKind::MessageLockLost,
                "the connection that received the message is gone; the hub delivers it again",
            )));
        }
        if self.received.elapsed() > LOCK {
            return Some(Err(Error::new(
                ErrorKind::MessageLockLost,
                "the message's lock expired; the hub delivers it again",
            )));
        }
        Some(self.command(how, None))
    }

    /// Settles the message `how` over HTTPS: a request, and the hub's answer.
    async fn request(mut self, how: Settlement) -> Result<()> {
        if !self.supports(how) {
            return Err(unsupported(self.transport, how));
        }
        self.remember(how);
        let (reply, rx) = oneshot::channel();
        self.command(how, Some(reply))?;
        rx.await
            .map_err(|_| Error::new(ErrorKind::Closed, "the device client was closed"))?
    }

    /// Records a completion or rejection in the client's window of settled ids (before it is
    /// sent: a process killed after this does not have the message handed over again).
    fn remember(&self, how: Settlement) {
        if how == Settlement::Abandon {
            return;
        }
        if let (Some(window), Some(id)) = (&self.duplicates, &self.delivered.message.message_id) {
            window.remember(&id.to_string(), how);
        }
    }

    /// This message, unless it is one the application already completed or rejected (with
    /// duplicates suppressed): then it is settled the same way, without being handed over, and
    /// counted.
    fn unless_duplicate(mut self) -> Option<ReceivedMessage> {
        let (Some(window), Some(id)) = (&self.duplicates, &self.delivered.message.message_id)
        else {
            return Some(self);
        };
        let id = id.to_string();
        let Some(how) = window.seen(&id) else {
            return Some(self);
        };
        // settled below without being remembered again
        let window = self.duplicates.take().expect("checked above");
        window.suppressed();
        tracing::debug!(
            message_id = %id,
            how = how.as_str(),
            delivery_count = self.delivered.delivery_count,
            "c2d device: duplicate settled without handing it over"
        );
        // MQTT cannot reject: a rejected message that comes again is completed there
        let how = if self.supports(how) {
            how
        } else {
            Settlement::Complete
        };
        match self.settle_unanswered(how) {
            Some(result) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "c2d device: settling a duplicate failed; it comes again");
                }
            }
            None => {
                // HTTPS: a request, answered by the hub, off this caller's way
                let _ = crate::runtime::spawn(async move {
                    if let Err(e) = self.request(how).await {
                        tracing::debug!(error = %e, "c2d device: settling a duplicate failed; it comes again");
                    }
                });
            }
        }
        None
    }

    /// Hands the settlement to the connection task.
    fn command(
        &mut self,
        how: Settlement,
        reply: Option<oneshot::Sender<Result<()>>>,
    ) -> Result<()> {
        let commands = self.commands.take().ok_or_else(|| {
            Error::new(ErrorKind::AlreadySettled, "the message was already settled")
        })?;
        commands
            .send(Command::Settle {
                epoch: self.epoch,
                id: self.id,
                how,
                reply,
            })
            .map_err(|_| Error::new(ErrorKind::Closed, "the device client was closed"))
    }

    /// Done: the hub removes the message (and sends `Success` feedback if asked). Over MQTT
    /// this sends the PUBACK, after those of the messages received before it.
    pub async fn complete(self) -> Result<()> {
        self.settle(Settlement::Complete).await
    }

    /// Dead-letters the message (`Rejected` feedback). AMQP and HTTPS: over MQTT this is an
    /// `Unsupported` error, sent nowhere, and the message, consumed by the call, is given up
    /// (see [`supports`](Self::supports) to check first).
    pub async fn reject(self) -> Result<()> {
        self.settle(Settlement::Reject).await
    }

    /// Puts the message back for another delivery (delivery count + 1). AMQP and HTTPS: over
    /// MQTT this is an `Unsupported` error, as for [`reject`](Self::reject).
    pub async fn abandon(self) -> Result<()> {
        self.settle(Settlement::Abandon).await
    }
}

/// The error of a settlement the transport cannot make.
fn unsupported(transport: Transport, how: Settlement) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "{transport} cannot {} a message (MQTT 3.1.1 can only complete; use AMQP or HTTPS); \
             nothing was sent",
            how.as_str()
        ),
    )
}

/// A received message that any thread may settle once: what the C, Python and Node bindings
/// hold for the application, where settling cannot consume the application's handle. What
/// the message holds stays readable: [`delivered`](Self::delivered).
#[derive(Debug)]
pub struct SettleOnce {
    message: Mutex<Option<ReceivedMessage>>,
    transport: Transport,
    delivered: Delivered,
}

impl SettleOnce {
    /// Holds `message` until it is settled.
    pub fn new(message: ReceivedMessage) -> Self {
        SettleOnce {
            transport: message.transport,
            delivered: message.delivered.clone(),
            message: Mutex::new(Some(message)),
        }
    }

    /// What the message holds, settled or not.
    pub fn delivered(&self) -> &Delivered {
        &self.delivered
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<ReceivedMessage>> {
        self.message.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the message to settle it `how`. [`ErrorKind::AlreadySettled`] if it was taken
    /// before; [`ErrorKind::Unsupported`] if its transport cannot settle it so, and then the
    /// message stays here, the application's to complete.
    pub fn take(&self, how: Settlement) -> Result<ReceivedMessage> {
        if !self.transport.can_settle(how) {
            return Err(unsupported(self.transport, how));
        }
        self.slot().take().ok_or_else(|| {
            Error::new(
                ErrorKind::AlreadySettled,
                "this delivery was already settled (or given up by a settle that failed)",
            )
        })
    }

    /// Settles the message `how` without waiting, where its transport's settlement needs no
    /// answer from the hub (MQTT, AMQP: see [`ReceivedMessage::settle`]); `None`, and the
    /// message kept, over HTTPS: [`take`](Self::take) it and `settle().await`.
    pub fn settle_now(&self, how: Settlement) -> Option<Result<()>> {
        if !self.transport.settles_unanswered() {
            return None;
        }
        Some(self.take(how).and_then(|mut m| {
            m.settle_unanswered(how).unwrap_or_else(|| {
                Err(Error::new(
                    ErrorKind::Internal,
                    "a settlement needs an answer",
                ))
            })
        }))
    }

    /// Whether the message was taken (settled, or put back).
    pub fn is_settled(&self) -> bool {
        self.slot().is_none()
    }

    /// [Puts back](ReceivedMessage::put_back) the message if it was not taken: for a receive
    /// whose caller went away before it had the message. Returns whether it did.
    pub fn put_back(&self) -> bool {
        let taken = self.slot().take();
        taken.map(ReceivedMessage::put_back).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: &str = "HostName=localhost;DeviceId=d;SharedAccessKey=a2V5";

    #[test]
    fn each_transport_dials_its_own_port_unless_one_is_given() {
        let hub = |t| {
            DeviceClient::builder(CS)
                .unwrap()
                .mqtt_port(1001)
                .amqp_port(1002)
                .https_port(1003)
                .transport(t)
        };
        assert_eq!(hub(Transport::Mqtt).port_or_default(), 1001);
        assert_eq!(hub(Transport::Amqp).port_or_default(), 1002);
        assert_eq!(hub(Transport::MqttWs).port_or_default(), 1003);
        assert_eq!(hub(Transport::AmqpWs).port_or_default(), 1003);
        assert_eq!(hub(Transport::Https).port_or_default(), 1003);
        assert_eq!(hub(Transport::Amqp).port(2000).port_or_default(), 2000);
        let plain = |t| {
            DeviceClient::builder(CS)
                .unwrap()
                .transport(t)
                .port_or_default()
        };
        assert_eq!(plain(Transport::Mqtt), 8883);
        assert_eq!(plain(Transport::Amqp), 5671);
        assert_eq!(plain(Transport::MqttWs), 443);
        assert_eq!(plain(Transport::AmqpWs), 443);
        assert_eq!(plain(Transport::Https), 443);
    }

    #[test]
    fn transport_names_round_trip() {
        for t in Transport::ALL {
            assert_eq!(t.as_str().parse::<Transport>().unwrap(), t);
        }
        assert_eq!("mqtt-ws".parse::<Transport>().unwrap(), Transport::MqttWs);
        assert!("http2".parse::<Transport>().is_err());
    }
}
