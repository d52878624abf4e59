//! C2D messages: the ones a service sends (made from the Python `c2d.Message`'s fields) and
//! the ones a device receives and settles once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use c2d::{Ack, Delivered, Message, SettleOnce, Settlement};

use crate::error::to_py;
use crate::runtime::{awaitable, seconds, wait};

/// A time as seconds since the Unix epoch (how the Python layer makes a `datetime`).
pub fn epoch_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// A message to send: the fields of a `c2d.Message`, checked, as the engine's message.
#[pyclass(module = "c2d._native", frozen)]
pub struct OutgoingMessage(pub Message);

#[pymethods]
impl OutgoingMessage {
    /// The message of these fields.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        body: Vec<u8>,
        ack: &str,
        ttl: Option<f64>,
        message_id: Option<String>,
        correlation_id: Option<String>,
        content_type: Option<String>,
        content_encoding: Option<String>,
        properties: Vec<(String, String)>,
    ) -> PyResult<Self> {
        let mut m = Message::new(body).ack(ack.parse::<Ack>().map_err(to_py)?);
        m.expiry_time = ttl
            .map(|t| seconds("ttl", t).map(|ttl| SystemTime::now() + ttl))
            .transpose()?;
        m.message_id = message_id.map(Into::into);
        m.correlation_id = correlation_id.map(Into::into);
        m.content_type = content_type;
        m.content_encoding = content_encoding;
        m.properties = properties;
        Ok(OutgoingMessage(m))
    }
}

/// A message received by a device. What it holds stays readable after it is settled; it can
/// be settled once.
#[pyclass(module = "c2d._native", frozen)]
pub struct ReceivedMessage {
    /// The message, readable after it is settled.
    pending: SettleOnce,
    /// Whether Python code has the message. An awaited receive's result is not had until the
    /// awaiting coroutine [claims](Self::claim) it: a task cancelled as the message arrived
    /// drops the result unclaimed, and the message goes back to the client for its next
    /// receive instead of to nobody.
    claimed: AtomicBool,
}

impl ReceivedMessage {
    /// Wraps a message the engine delivered, for a caller that has it at once.
    pub fn new(received: c2d::ReceivedMessage) -> Self {
        let m = Self::unclaimed(received);
        m.claimed.store(true, Ordering::Relaxed);
        m
    }

    /// Wraps a message for an awaitable's result, which the coroutine that awaited it must
    /// claim.
    pub fn unclaimed(received: c2d::ReceivedMessage) -> Self {
        ReceivedMessage {
            pending: SettleOnce::new(received),
            claimed: AtomicBool::new(false),
        }
    }

    fn delivered(&self) -> &Delivered {
        self.pending.delivered()
    }

    /// The message, to settle `how` (an error, and the message kept, if it cannot be).
    fn take(&self, how: Settlement) -> PyResult<c2d::ReceivedMessage> {
        self.pending.take(how).map_err(to_py)
    }

    /// Settles `how` at once where the transport's settlement needs no answer (see
    /// `c2d::SettleOnce::settle_now`): whether it did; `false`, and nothing done, over HTTPS.
    fn settle_now(&self, how: Settlement) -> PyResult<bool> {
        match self.pending.settle_now(how) {
            Some(result) => result.map(|()| true).map_err(to_py),
            None => Ok(false),
        }
    }
}

#[pymethods]
impl ReceivedMessage {
    /// The body.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.delivered().message.body)
    }

    /// The message id, as text.
    #[getter]
    fn message_id(&self) -> Option<String> {
        self.delivered()
            .message
            .message_id
            .as_ref()
            .map(ToString::to_string)
    }

    /// The correlation id, as text.
    #[getter]
    fn correlation_id(&self) -> Option<String> {
        self.delivered()
            .message
            .correlation_id
            .as_ref()
            .map(ToString::to_string)
    }

    /// The user id.
    #[getter]
    fn user_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.delivered()
            .message
            .user_id
            .as_ref()
            .map(|u| PyBytes::new(py, u))
    }

    /// The address it was sent to (`/devices/{id}/messages/devicebound`).
    #[getter]
    fn to(&self) -> Option<String> {
        self.delivered().message.to.clone()
    }

    /// The content type.
    #[getter]
    fn content_type(&self) -> Option<String> {
        self.delivered().message.content_type.clone()
    }

    /// The content encoding.
    #[getter]
    fn content_encoding(&self) -> Option<String> {
        self.delivered().message.content_encoding.clone()
    }

    /// Which outcomes the sender asked feedback for.
    #[getter]
    fn ack(&self) -> &'static str {
        self.delivered().message.ack_mode().as_str()
    }

    /// When it expires, in seconds since the Unix epoch.
    #[getter]
    fn expiry_time(&self) -> Option<f64> {
        self.delivered().message.expiry_time.map(epoch_seconds)
    }

    /// When it was created, in seconds since the Unix epoch.
    #[getter]
    fn creation_time(&self) -> Option<f64> {
        self.delivered().message.creation_time.map(epoch_seconds)
    }

    /// When the hub accepted it, in seconds since the Unix epoch.
    #[getter]
    fn enqueued_time(&self) -> Option<f64> {
        self.delivered().enqueued_time.map(epoch_seconds)
    }

    /// How many times it was delivered before this delivery.
    #[getter]
    fn delivery_count(&self) -> u32 {
        self.delivered().delivery_count
    }

    /// The hub's sequence number.
    #[getter]
    fn sequence_number(&self) -> Option<u64> {
        self.delivered().sequence_number
    }

    /// The lock token of this delivery.
    #[getter]
    fn lock_token(&self) -> Option<String> {
        self.delivered().lock_token.clone()
    }

    /// The application properties, in the order they came.
    #[getter]
    fn properties<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.delivered().message.properties {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Whether this delivery is over: completed, rejected, abandoned, or given up by a settle
    /// that failed (a lost lock, say), in which case the hub delivers it again. A settle the
    /// transport cannot do (an MQTT reject) changes nothing.
    #[getter]
    fn settled(&self) -> bool {
        self.pending.is_settled()
    }

    /// Completes it: done, it leaves the queue.
    fn complete(&self, py: Python<'_>) -> PyResult<()> {
        let m = self.take(Settlement::Complete)?;
        wait(py, m.complete())?.map_err(to_py)
    }

    /// Rejects it: dead-lettered (AMQP and HTTPS; over MQTT `Unsupported`, and the message
    /// stays to be completed).
    fn reject(&self, py: Python<'_>) -> PyResult<()> {
        let m = self.take(Settlement::Reject)?;
        wait(py, m.reject())?.map_err(to_py)
    }

    /// Abandons it: back to the queue, delivered again (AMQP and HTTPS; over MQTT
    /// `Unsupported`, and the message stays to be completed).
    fn abandon(&self, py: Python<'_>) -> PyResult<()> {
        let m = self.take(Settlement::Abandon)?;
        wait(py, m.abandon())?.map_err(to_py)
    }

    /// Completes it at once if its transport's settlement needs no answer from the hub (MQTT,
    /// AMQP: the frame is queued, no thread is woken); `False`, and nothing done, over HTTPS,
    /// where `complete` or `complete_async` waits for the hub.
    fn complete_now(&self) -> PyResult<bool> {
        self.settle_now(Settlement::Complete)
    }

    /// [`complete_now`](Self::complete_now) for a reject.
    fn reject_now(&self) -> PyResult<bool> {
        self.settle_now(Settlement::Reject)
    }

    /// [`complete_now`](Self::complete_now) for an abandon.
    fn abandon_now(&self) -> PyResult<bool> {
        self.settle_now(Settlement::Abandon)
    }

    /// Takes the message from an awaited receive (see [`ReceivedMessage::claimed`]).
    fn claim(&self) {
        self.claimed.store(true, Ordering::Relaxed);
    }

    /// [`complete`](Self::complete), awaitable.
    fn complete_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.take(Settlement::Complete)?;
        awaitable(py, async move { m.complete().await.map_err(to_py) })
    }

    /// [`reject`](Self::reject), awaitable.
    fn reject_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.take(Settlement::Reject)?;
        awaitable(py, async move { m.reject().await.map_err(to_py) })
    }

    /// [`abandon`](Self::abandon), awaitable.
    fn abandon_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.take(Settlement::Abandon)?;
        awaitable(py, async move { m.abandon().await.map_err(to_py) })
    }
}

impl Drop for ReceivedMessage {
    /// An awaited receive's message that its coroutine never claimed (the task was cancelled
    /// as the message arrived) goes back to the client, first in line for the next receive.
    fn drop(&mut self) {
        if !self.claimed.load(Ordering::Relaxed) {
            self.pending.put_back();
        }
    }
}
