//! The service client: send C2D messages over AMQP (or AMQP over WebSockets), follow each
//! message's own outcome and every feedback record, purge queues and manage devices.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fe2o3_amqp::types::definitions::{AmqpError, ErrorCondition, LinkError};
use fe2o3_amqp::types::messaging::Outcome;
use fe2o3_amqp::Sender;
use tokio::sync::broadcast;

use crate::amqp::session::AmqpSession;
use crate::connection_string::{ConnectionString, Credential};
use crate::error::{Error, ErrorKind, Result};
use crate::message::{device_bound_address, Ack, Message, MessageId};
use crate::retry::RetryPolicy;
use crate::service::feedback::FeedbackRecord;
pub use crate::service::options::ServiceClientBuilder;
use crate::service::options::ServiceOptions;
pub use crate::service::options::ServiceTransport;
use crate::service::pump::{Awaited, Feedback, FeedbackSource};
use crate::service::registry::RegistryOptions;
use crate::service::registry::{PurgeResult, RegistryClient};
use crate::status::{ConnectionStatus, StatusReceiver, StatusSender};

impl ServiceClientBuilder {
    /// Checks the options, then connects (retrying as the policy says).
    pub async fn connect(mut self) -> Result<ServiceClient> {
        self.options.connection = self.options.connection.checked();
        let (o, transport) = (&self.options.connection, self.options.transport);
        if o.proxy.is_some() && transport == ServiceTransport::Amqp {
            return Err(Error::invalid_argument(
                "a proxy carries WebSockets and HTTPS: use ServiceTransport::AmqpWs with it",
            ));
        }
        let ca = o.trusted_ca_pem()?;
        let tls = crate::transport::tls_config(ca.as_deref())?;
        let registry = RegistryClient::new(
            &self.connection_string,
            RegistryOptions {
                trusted_ca_pem: ca,
                endpoint: o.https_port.map(|p| format!("{}:{p}", self.host_name)),
                timeout: Some(o.timeout),
                proxy: o.proxy.clone(),
            },
        )?;
        ServiceClient::start(self, tls, registry).await
    }
}

struct SendLink {
    amqp: AmqpSession,
    sender: Sender,
    token_expiry: SystemTime,
    /// Tells this link from the one that replaces it after a failure.
    generation: u64,
}

/// The error of a call on a closed client, or one the closing ended.
fn closed() -> Error {
    Error::new(ErrorKind::Closed, "the service client was closed")
}

/// Numbers the send links a process opens.
static LINK_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct Inner {
    config: ServiceClientBuilder,
    tls: Arc<rustls::ClientConfig>,
    registry: RegistryClient,
    link: tokio::sync::Mutex<Option<SendLink>>,
    feedback: Feedback,
    status: StatusSender,
    /// True once the client is closed: the calls waiting end at once.
    closed: tokio::sync::watch::Sender<bool>,
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

/// A message ready to send to one device: its AMQP form, id and ack.
pub(crate) struct Prepared {
    amqp: crate::amqp::AmqpMessage,
    message_id: String,
    ack: Ack,
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
        ErrorCondition::Custom(s) if s.0.contains("quota") => ErrorKind::QuotaExceeded,
        ErrorCondition::Custom(s) if s.0.contains("throttl") => ErrorKind::Throttled,
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
        let expiry = SystemTime::now() + self.config.options.connection.sas_token_ttl;
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
        self.config
            .options
            .connection
            .port
            .unwrap_or(match self.config.options.transport {
                ServiceTransport::Amqp => self.config.options.connection.amqp_port.unwrap_or(5671),
                ServiceTransport::AmqpWs => {
                    self.config.options.connection.https_port.unwrap_or(443)
                }
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
        let websocket = self.config.options.transport == ServiceTransport::AmqpWs;
        AmqpSession::open(
            &self.config.host_name,
            self.port(),
            websocket,
            self.tls.clone(),
            self.config.options.connection.timeout,
            self.config.options.connection.proxy.as_ref(),
        )
        .await
    }

    async fn authorize(&self, amqp: &mut AmqpSession) -> Result<SystemTime> {
        let (token, expiry) = self.token()?;
        amqp.put_token(
            &self.config.host_name,
            &token,
            self.config.options.connection.timeout,
        )
        .await?;
        Ok(expiry)
    }

    fn check_open(&self) -> Result<()> {
        if *self.closed.borrow() {
            Err(closed())
        } else {
            Ok(())
        }
    }

    /// `work`'s result, or `Closed` as soon as the client is closed (`work` is then dropped:
    /// a send may have reached the hub, as when it times out).
    async fn until_closed<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let mut closed = self.closed.subscribe();
        tokio::select! {
            result = work => result,
            _ = closed.wait_for(|c| *c) => Err(self::closed()),
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
                // boxed, as the renewal below: these rare futures are tens of KB, which every
                // send's future (moved whole into each spawned task) would otherwise carry
                *guard = Some(Box::pin(self.open_link()).await?);
            }
            let link = guard.as_mut().expect("set above");
            if link.token_expiry
                <= SystemTime::now() + self.config.options.connection.sas_token_ttl / 4
            {
                let (token, expiry) = self.token()?;
                Box::pin(link.amqp.put_token(
                    &self.config.host_name,
                    &token,
                    self.config.options.connection.timeout,
                ))
                .await?;
                link.token_expiry = expiry;
            }
            let written = tokio::time::timeout(
                self.config.options.connection.timeout,
                Box::pin(link.sender.send_batchable(amqp_message.clone())),
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
                        format!(
                            "no room to send within {:?}",
                            self.config.options.connection.timeout
                        ),
                    ));
                }
            }
        };
        let answered = tokio::select! {
            answered = tokio::time::timeout(self.config.options.connection.timeout, delivery) => answered,
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
                    format!(
                        "no answer to a send within {:?}",
                        self.config.options.connection.timeout
                    ),
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
}

impl FeedbackSource for Inner {
    fn feedback(&self) -> &Feedback {
        &self.feedback
    }

    fn is_open(&self) -> bool {
        self.check_open().is_ok()
    }

    fn retry(&self) -> &RetryPolicy {
        &self.config.options.connection.retry
    }

    fn token_ttl(&self) -> Duration {
        self.config.options.connection.sas_token_ttl
    }

    async fn open_session(&self) -> Result<AmqpSession> {
        Inner::open_session(self).await
    }

    async fn authorize(&self, amqp: &mut AmqpSession) -> Result<SystemTime> {
        Inner::authorize(self, amqp).await
    }
}

impl ServiceClient {
    /// Connects with checked options and a registry client (retrying as the policy says).
    pub(crate) async fn start(
        config: ServiceClientBuilder,
        tls: Arc<rustls::ClientConfig>,
        registry: RegistryClient,
    ) -> Result<ServiceClient> {
        let status_tx =
            StatusSender::new(ConnectionStatus::Disconnected("not connected yet".into()));
        let inner = Arc::new(Inner {
            config,
            tls,
            registry,
            link: tokio::sync::Mutex::new(None),
            feedback: Feedback::default(),
            status: status_tx,
            closed: tokio::sync::watch::Sender::new(false),
        });
        let client = ServiceClient { inner };
        {
            let mut link = client.inner.link.lock().await;
            let policy = client.inner.config.options.connection.retry.clone();
            let opened = crate::retry::retry(&policy, || client.inner.open_link()).await?;
            *link = Some(opened);
        }
        Ok(client)
    }

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
            options: ServiceOptions::default(),
        })
    }

    /// Sends a message to a device. A message id is generated when the message has none (so
    /// that its feedback can be matched); `to` is set to the device's address. Errors that
    /// retrying cannot fix (device not found, queue full, too large, unauthorized) are
    /// returned at once; others are retried as the client's policy says.
    pub async fn send(&self, device_id: &str, message: Message) -> Result<SentMessage> {
        let prepared = self.prepare(device_id, message)?;
        let inner = &self.inner;
        inner
            .until_closed(crate::retry::retry(
                &inner.config.options.connection.retry,
                || inner.send_once(&prepared.amqp),
            ))
            .await?;
        Ok(self.sent(prepared))
    }

    /// Checks the client and the device id, addresses the message and gives it an id.
    pub(crate) fn prepare(&self, device_id: &str, mut message: Message) -> Result<Prepared> {
        self.inner.check_open()?;
        crate::identity::validate_id(device_id).map_err(Error::invalid_argument)?;
        message.to = Some(device_bound_address(device_id));
        let id = message
            .message_id
            .get_or_insert_with(|| MessageId::String(uuid::Uuid::new_v4().to_string()))
            .to_string();
        Ok(Prepared {
            amqp: crate::amqp::from_c2d(&message),
            message_id: id,
            ack: message.ack_mode(),
        })
    }

    /// One attempt to send a prepared message (no retry), ended by the client's close.
    pub(crate) async fn send_attempt(&self, prepared: &Prepared) -> Result<()> {
        self.inner
            .until_closed(self.inner.send_once(&prepared.amqp))
            .await
    }

    /// The handle of a prepared message the hub took.
    pub(crate) fn sent(&self, prepared: Prepared) -> SentMessage {
        SentMessage {
            message_id: prepared.message_id,
            ack: prepared.ack,
            client: self.clone(),
        }
    }

    /// The retry policy of the client's sends.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.config.options.connection.retry
    }

    fn start_pump(&self) -> Result<()> {
        self.inner.feedback.start(Arc::downgrade(&self.inner))
    }

    /// Every feedback record from now on (the hub's feedback queue is read by one pump per
    /// client; each subscriber gets every record).
    pub fn feedback(&self) -> Result<FeedbackReceiver> {
        self.inner.check_open()?;
        let rx = self.inner.feedback.subscribe();
        self.start_pump()?;
        Ok(FeedbackReceiver {
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            client: self.clone(),
        })
    }

    /// Removes every message queued for a device.
    pub async fn purge(&self, device_id: &str) -> Result<PurgeResult> {
        self.inner.check_open()?;
        self.inner
            .until_closed(self.inner.registry.purge_queue(device_id))
            .await
    }

    /// The identity registry (REST), authorized by this client's policy.
    pub fn registry(&self) -> &RegistryClient {
        &self.inner.registry
    }

    /// Connection status changes.
    pub fn status(&self) -> StatusReceiver {
        self.inner.status.subscribe()
    }

    /// Closes the connection and stops the feedback pump; waiting calls (`send`, `purge`,
    /// `outcome`, a feedback receiver's `recv`) end at once, with `Closed` (`recv`: `None`).
    pub async fn close(&self) {
        self.inner.closed.send_replace(true);
        self.inner.feedback.stop().await;
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
    ///
    /// Cancel safe: a wait dropped before it returns (a timeout, a `select!` that took
    /// another branch) takes nothing; the record, when it comes, is kept among the client's
    /// recent records for a later call.
    pub async fn outcome(&self) -> Result<FeedbackRecord> {
        if self.ack == Ack::None {
            return Err(Error::invalid_argument(
                "the message was sent with ack=none: no feedback will come",
            ));
        }
        let inner = &self.client.inner;
        inner.check_open()?;
        let rx = match inner.feedback.await_record(&self.message_id) {
            Awaited::Arrived(record) => return Ok(record),
            Awaited::Pending(rx) => rx,
        };
        self.client.start_pump()?;
        rx.await.map_err(|_| closed())
    }
}

/// A subscription to every feedback record. Its clones share one place in the stream (each
/// record goes to one of them): what a binding's object, used from several tasks, holds.
#[derive(Debug, Clone)]
pub struct FeedbackReceiver {
    rx: Arc<tokio::sync::Mutex<broadcast::Receiver<FeedbackRecord>>>,
    client: ServiceClient,
}

impl FeedbackReceiver {
    /// The next record; `None` once the client is closed. Cancel-safe: a wait that is
    /// dropped takes no record.
    pub async fn recv(&self) -> Option<FeedbackRecord> {
        let mut rx = self.rx.lock().await;
        loop {
            match rx.recv().await {
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
