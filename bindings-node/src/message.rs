//! C2D messages: the ones a service sends (made from the fields of the package's `Message`)
//! and the ones a device receives and settles once.

use napi::bindgen_prelude::{BigInt, Buffer, Either, Object, PromiseRaw};
use napi::JsDate;
use napi::{Env, Result};
use napi_derive::napi;

use c2d::{Ack, Delivered, Error, Message, SettleOnce, Settlement};

use crate::error::js_error;
use crate::runtime::{abortable, epoch_millis, opt_millis, Abort};

/// A time as a JavaScript `Date`.
fn date(env: &Env, time: Option<std::time::SystemTime>) -> Result<Option<JsDate<'_>>> {
    time.map(|t| env.create_date(epoch_millis(t))).transpose()
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
    let mut m = Message::new(fields.body.to_vec()).ack(fields.ack.parse::<Ack>()?);
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

/// A settlement's promise: settled already, or of the engine's work.
type Settling<'env> = Either<PromiseRaw<'env, ()>, Object<'env>>;

/// A message received by a device. What it holds stays readable after it is settled; it can
/// be settled once.
#[napi]
pub struct ReceivedMessage {
    /// The message, readable after it is settled.
    pending: SettleOnce,
}

impl ReceivedMessage {
    /// Wraps a message the engine delivered.
    pub fn new(received: c2d::ReceivedMessage) -> Self {
        ReceivedMessage {
            pending: SettleOnce::new(received),
        }
    }

    fn delivered(&self) -> &Delivered {
        self.pending.delivered()
    }

    /// A promise of settling the message `how`; one that cannot be (settled before, or a
    /// settlement the transport cannot make, which keeps the message) rejects. Over MQTT and
    /// AMQP, whose settlement the hub does not answer, the frame is queued now and the
    /// promise made settled: no engine thread wakes the JavaScript thread for it.
    fn settle_as<'env>(
        &self,
        env: &'env Env,
        how: Settlement,
        abort: Option<&Abort>,
    ) -> Result<Settling<'env>> {
        if let Some(result) = self.pending.settle_now(how) {
            return match result {
                Ok(()) => PromiseRaw::resolve(env, ()),
                Err(e) => PromiseRaw::reject(env, js_error(env, &e)),
            }
            .map(Either::A);
        }
        let taken = self.pending.take(how);
        abortable(env, abort, async move { taken?.settle(how).await }).map(Either::B)
    }
}

#[napi]
impl ReceivedMessage {
    /// The body.
    #[napi(getter)]
    pub fn body(&self) -> Buffer {
        self.delivered().message.body.to_vec().into()
    }

    /// The message id, as text.
    #[napi(getter)]
    pub fn message_id(&self) -> Option<String> {
        self.delivered()
            .message
            .message_id
            .as_ref()
            .map(ToString::to_string)
    }

    /// The correlation id, as text.
    #[napi(getter)]
    pub fn correlation_id(&self) -> Option<String> {
        self.delivered()
            .message
            .correlation_id
            .as_ref()
            .map(ToString::to_string)
    }

    /// The user id.
    #[napi(getter)]
    pub fn user_id(&self) -> Option<Buffer> {
        self.delivered()
            .message
            .user_id
            .as_ref()
            .map(|u| u.to_vec().into())
    }

    /// The address it was sent to (`/devices/{id}/messages/devicebound`).
    #[napi(getter)]
    pub fn to(&self) -> Option<String> {
        self.delivered().message.to.clone()
    }

    /// The content type.
    #[napi(getter)]
    pub fn content_type(&self) -> Option<String> {
        self.delivered().message.content_type.clone()
    }

    /// The content encoding.
    #[napi(getter)]
    pub fn content_encoding(&self) -> Option<String> {
        self.delivered().message.content_encoding.clone()
    }

    /// Which outcomes the sender asked feedback for.
    #[napi(getter, ts_return_type = "'none' | 'positive' | 'negative' | 'full'")]
    pub fn ack(&self) -> &'static str {
        self.delivered().message.ack_mode().as_str()
    }

    /// When it expires.
    #[napi(getter)]
    pub fn expiry_time<'env>(&self, env: &'env Env) -> Result<Option<JsDate<'env>>> {
        date(env, self.delivered().message.expiry_time)
    }

    /// When it was created.
    #[napi(getter)]
    pub fn creation_time<'env>(&self, env: &'env Env) -> Result<Option<JsDate<'env>>> {
        date(env, self.delivered().message.creation_time)
    }

    /// When the hub accepted it.
    #[napi(getter)]
    pub fn enqueued_time<'env>(&self, env: &'env Env) -> Result<Option<JsDate<'env>>> {
        date(env, self.delivered().enqueued_time)
    }

    /// How many times it was delivered before this delivery.
    #[napi(getter)]
    pub fn delivery_count(&self) -> u32 {
        self.delivered().delivery_count
    }

    /// The hub's sequence number (a `bigint`: it may exceed 2^53).
    #[napi(getter)]
    pub fn sequence_number(&self) -> Option<BigInt> {
        self.delivered().sequence_number.map(BigInt::from)
    }

    /// The lock token of this delivery.
    #[napi(getter)]
    pub fn lock_token(&self) -> Option<String> {
        self.delivered().lock_token.clone()
    }

    /// The application properties, in the order they came.
    #[napi(getter, ts_return_type = "Record<string, string>")]
    pub fn properties<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let mut properties = Object::new(env)?;
        for (name, value) in &self.delivered().message.properties {
            properties.set(name, value)?;
        }
        Ok(properties)
    }

    /// Whether this delivery is over: completed, rejected, abandoned, or given up by a settle
    /// that failed (a lost lock, say), in which case the hub delivers it again. A settle the
    /// transport cannot do (an MQTT reject) changes nothing.
    #[napi(getter)]
    pub fn settled(&self) -> bool {
        self.pending.is_settled()
    }

    /// Settles it `how` (`complete`, `reject` or `abandon`): the package's `complete()`,
    /// `reject()` and `abandon()`, which take an `AbortSignal`. Over MQTT and AMQP the frame
    /// is queued at once and the promise is settled already; over HTTPS it waits for the
    /// hub's answer (dropped when `abort` is aborted).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn settle<'env>(
        &self,
        env: &'env Env,
        how: String,
        abort: Option<&Abort>,
    ) -> Result<Settling<'env>> {
        let how = match how.as_str() {
            "complete" => Settlement::Complete,
            "reject" => Settlement::Reject,
            "abandon" => Settlement::Abandon,
            other => {
                return PromiseRaw::reject(
                    env,
                    js_error(
                        env,
                        &Error::invalid_argument(format!("no settlement {other:?}")),
                    ),
                )
                .map(Either::A)
            }
        };
        self.settle_as(env, how, abort)
    }

    /// Hands the message back, unsettled, to the client that received it: its next receive
    /// returns it again, before anything newer, with its lock (for code that took a message
    /// it cannot handle now). Does nothing to a message already settled.
    #[napi]
    pub fn put_back(&self) {
        self.pending.put_back();
    }
}
