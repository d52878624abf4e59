//! C2D messages: the ones a service sends (made from the fields of the package's `Message`)
//! and the ones a device receives and settles once.

use napi::bindgen_prelude::{Buffer, Object};
use napi::{Env, Result};
use napi_derive::napi;

use c2d::{Ack, Error, Message, SettleOnce, Settlement};

use crate::error::throw;
use crate::runtime::{epoch_millis, opt_millis, promise};

/// The engine's ack mode of its JavaScript name.
pub fn ack(name: &str) -> c2d::Result<Ack> {
    match name {
        "none" => Ok(Ack::None),
        "positive" => Ok(Ack::Positive),
        "negative" => Ok(Ack::Negative),
        "full" => Ok(Ack::Full),
        other => Err(Error::invalid_argument(format!(
            "ack must be none, positive, negative or full, not {other:?}"
        ))),
    }
}

/// The fields of a message to send.
#[napi(object)]
pub struct OutgoingMessage {
    /// The body.
    pub body: Buffer,
    /// `none`, `positive`, `negative` or `full`.
    pub ack: String,
    /// The time to live in milliseconds (the hub's default when absent).
    pub ttl_ms: Option<f64>,
    /// The message id (generated when absent).
    pub message_id: Option<String>,
    /// The correlation id.
    pub correlation_id: Option<String>,
    /// The content type.
    pub content_type: Option<String>,
    /// The content encoding.
    pub content_encoding: Option<String>,
    /// The application properties as `[name, value, name, value, …]`, in order.
    pub properties: Vec<String>,
}

/// The engine's message of `fields`.
pub fn outgoing(fields: OutgoingMessage) -> c2d::Result<Message> {
    if fields.properties.len() % 2 != 0 {
        return Err(Error::invalid_argument(
            "properties come as name, value pairs",
        ));
    }
    let mut m = Message::new(fields.body.to_vec()).ack(ack(&fields.ack)?);
    if let Some(ttl) = opt_millis("ttlMs", fields.ttl_ms)? {
        m = m.ttl(ttl);
    }
    if let Some(id) = fields.message_id {
        m = m.message_id(id);
    }
    if let Some(id) = fields.correlation_id {
        m = m.correlation_id(id);
    }
    if let Some(ct) = fields.content_type {
        m = m.content_type(ct);
    }
    if let Some(ce) = fields.content_encoding {
        m = m.content_encoding(ce);
    }
    let mut properties = fields.properties.into_iter();
    while let (Some(name), Some(value)) = (properties.next(), properties.next()) {
        m = m.property(name, value);
    }
    Ok(m)
}

/// A message received by a device. What it holds stays readable after it is settled; it can
/// be settled once.
#[napi]
pub struct ReceivedMessage {
    message: Message,
    delivery_count: u32,
    enqueued_time: Option<std::time::SystemTime>,
    sequence_number: Option<u64>,
    lock_token: Option<String>,
    pending: SettleOnce,
}

impl ReceivedMessage {
    /// Wraps a message the engine delivered.
    pub fn new(received: c2d::ReceivedMessage) -> Self {
        ReceivedMessage {
            message: received.message().clone(),
            delivery_count: received.delivery_count(),
            enqueued_time: received.enqueued_time(),
            sequence_number: received.sequence_number(),
            lock_token: received.lock_token().map(str::to_string),
            pending: SettleOnce::new(received),
        }
    }

    /// The message, to settle `how` (thrown, and the message kept, if it cannot be).
    fn take(&self, env: &Env, how: Settlement) -> Result<c2d::ReceivedMessage> {
        match self.pending.take(how) {
            Ok(m) => Ok(m),
            Err(e) => throw(env, e),
        }
    }
}

#[napi]
impl ReceivedMessage {
    /// The body.
    #[napi(getter)]
    pub fn body(&self) -> Buffer {
        self.message.body.to_vec().into()
    }

    /// The message id, as text.
    #[napi(getter)]
    pub fn message_id(&self) -> Option<String> {
        self.message.message_id.as_ref().map(ToString::to_string)
    }

    /// The correlation id, as text.
    #[napi(getter)]
    pub fn correlation_id(&self) -> Option<String> {
        self.message
            .correlation_id
            .as_ref()
            .map(ToString::to_string)
    }

    /// The user id.
    #[napi(getter)]
    pub fn user_id(&self) -> Option<Buffer> {
        self.message.user_id.as_ref().map(|u| u.to_vec().into())
    }

    /// The address it was sent to (`/devices/{id}/messages/devicebound`).
    #[napi(getter)]
    pub fn to(&self) -> Option<String> {
        self.message.to.clone()
    }

    /// The content type.
    #[napi(getter)]
    pub fn content_type(&self) -> Option<String> {
        self.message.content_type.clone()
    }

    /// The content encoding.
    #[napi(getter)]
    pub fn content_encoding(&self) -> Option<String> {
        self.message.content_encoding.clone()
    }

    /// Which outcomes the sender asked feedback for.
    #[napi(getter)]
    pub fn ack(&self) -> &'static str {
        self.message.ack_mode().as_str()
    }

    /// When it expires, in milliseconds since the Unix epoch.
    #[napi(getter)]
    pub fn expiry_time(&self) -> Option<f64> {
        self.message.expiry_time.map(epoch_millis)
    }

    /// When it was created, in milliseconds since the Unix epoch.
    #[napi(getter)]
    pub fn creation_time(&self) -> Option<f64> {
        self.message.creation_time.map(epoch_millis)
    }

    /// When the hub accepted it, in milliseconds since the Unix epoch.
    #[napi(getter)]
    pub fn enqueued_time(&self) -> Option<f64> {
        self.enqueued_time.map(epoch_millis)
    }

    /// How many times it was delivered before this delivery.
    #[napi(getter)]
    pub fn delivery_count(&self) -> u32 {
        self.delivery_count
    }

    /// The hub's sequence number (a decimal string: it may exceed 2^53).
    #[napi(getter)]
    pub fn sequence_number(&self) -> Option<String> {
        self.sequence_number.map(|n| n.to_string())
    }

    /// The lock token of this delivery.
    #[napi(getter)]
    pub fn lock_token(&self) -> Option<String> {
        self.lock_token.clone()
    }

    /// The application properties as `[name, value, name, value, …]`, in the order they came.
    #[napi(getter)]
    pub fn properties(&self) -> Vec<String> {
        let mut flat = Vec::with_capacity(self.message.properties.len() * 2);
        for (k, v) in &self.message.properties {
            flat.push(k.clone());
            flat.push(v.clone());
        }
        flat
    }

    /// Whether this delivery is over: completed, rejected, abandoned, or given up by a settle
    /// that failed (a lost lock, say), in which case the hub delivers it again. A settle the
    /// transport cannot do (an MQTT reject) changes nothing.
    #[napi(getter)]
    pub fn settled(&self) -> bool {
        self.pending.is_settled()
    }

    /// Completes it: done, it leaves the queue.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn complete<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let m = self.take(env, Settlement::Complete)?;
        promise(env, m.complete())
    }

    /// Rejects it: dead-lettered (AMQP and HTTPS; over MQTT it throws `C2D_UNSUPPORTED`, and
    /// the message stays to be completed).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn reject<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let m = self.take(env, Settlement::Reject)?;
        promise(env, m.reject())
    }

    /// Abandons it: back to the queue, delivered again (AMQP and HTTPS; over MQTT it throws
    /// `C2D_UNSUPPORTED`, and the message stays to be completed).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn abandon<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let m = self.take(env, Settlement::Abandon)?;
        promise(env, m.abandon())
    }
}
