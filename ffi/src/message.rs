//! Messages: built with `c2d_message_new` and setters for sending, or received by a device
//! client, read with accessors and settled with complete / reject / abandon.

use std::ffi::c_char;
use std::time::{Duration, SystemTime};

use c2d_core::timestamp::to_unix_millis;
use c2d_core::{Ack, Message, MessageId, ReceivedMessage, Result, SettleOnce, Settlement};

use crate::args::{bytes, from_handle, get, get_mut, into_handle, read_text, text, CText, Out};
use crate::error::{c2d_result, call, call_infallible, invalid};
use crate::runtime::block_on;

/// Which outcomes of a sent message produce a feedback record (`iothub-ack`).
pub type c2d_ack = u32;
/// No feedback (the default).
pub const C2D_ACK_NONE: c2d_ack = 0;
/// Feedback when the device completes the message (`Success`).
pub const C2D_ACK_POSITIVE: c2d_ack = 1;
/// Feedback when the message fails (`Rejected`, `Expired`, `DeliveryCountExceeded`, `Purged`).
pub const C2D_ACK_NEGATIVE: c2d_ack = 2;
/// Feedback for every outcome.
pub const C2D_ACK_FULL: c2d_ack = 3;

fn ack_code(ack: Ack) -> c2d_ack {
    match ack {
        Ack::None => C2D_ACK_NONE,
        Ack::Positive => C2D_ACK_POSITIVE,
        Ack::Negative => C2D_ACK_NEGATIVE,
        Ack::Full => C2D_ACK_FULL,
    }
}

fn ack_of(code: c2d_ack) -> Result<Ack> {
    match code {
        C2D_ACK_NONE => Ok(Ack::None),
        C2D_ACK_POSITIVE => Ok(Ack::Positive),
        C2D_ACK_NEGATIVE => Ok(Ack::Negative),
        C2D_ACK_FULL => Ok(Ack::Full),
        other => Err(invalid(format!("{other} is not a c2d_ack"))),
    }
}

/// A cloud-to-device message: a body, system properties and application properties.
///
/// Made by `c2d_message_new` (to send) or by a device client (received; these can also be
/// settled). Owned by the caller and freed with `c2d_message_free`; settling does not free.
/// Strings and buffers returned by the accessors belong to the message and stay valid until
/// it is freed or (for messages to send) changed by a setter.
pub struct c2d_message {
    /// The message to send; a received one is in `received` ([`message`](Self::message)
    /// gives either).
    message: Message,
    text: Texts,
    received: Option<Received>,
}

/// The message's strings as C strings, made again after every change.
struct Texts {
    message_id: CText,
    correlation_id: CText,
    to: CText,
    content_type: CText,
    content_encoding: CText,
    properties: Vec<(CText, CText)>,
}

impl Texts {
    fn of(m: &Message) -> Texts {
        let id = |i: &Option<MessageId>| CText::of(i.as_ref().map(ToString::to_string).as_deref());
        Texts {
            message_id: id(&m.message_id),
            correlation_id: id(&m.correlation_id),
            to: CText::of(m.to.as_deref()),
            content_type: CText::of(m.content_type.as_deref()),
            content_encoding: CText::of(m.content_encoding.as_deref()),
            properties: m
                .properties
                .iter()
                .map(|(k, v)| (CText::of(Some(k)), CText::of(Some(v))))
                .collect(),
        }
    }
}

struct Received {
    /// Taken by the first settlement the transport can make; what the message holds stays
    /// readable in it.
    settle: SettleOnce,
    lock_token: CText,
}

impl c2d_message {
    fn outgoing(message: Message) -> c2d_message {
        c2d_message {
            text: Texts::of(&message),
            message,
            received: None,
        }
    }

    /// A handle for a message a device client received.
    pub(crate) fn received(r: ReceivedMessage) -> c2d_message {
        let settle = SettleOnce::new(r);
        let d = settle.delivered();
        let (text, lock_token) = (Texts::of(&d.message), CText::of(d.lock_token.as_deref()));
        c2d_message {
            text,
            message: Message::default(),
            received: Some(Received { settle, lock_token }),
        }
    }

    /// The message: the one to send, or the one received.
    pub(crate) fn message(&self) -> &Message {
        self.received
            .as_ref()
            .map_or(&self.message, |r| &r.settle.delivered().message)
    }
}

/// Makes a message to send, with a copy of `body`.
///
/// @param body The payload (may be NULL when `body_len` is 0). Copied; the caller keeps it.
/// @param body_len The payload's length in bytes.
/// @param out_message Receives the new message, owned by the caller (free it with
///                    `c2d_message_free`).
/// @retval C2D_RESULT_OK The message was made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_message` is NULL, or `body` is NULL with a length.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_new(
    body: *const u8,
    body_len: usize,
    out_message: *mut *mut c2d_message,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_message, "out_message")?;
        let body = bytes(body, body_len, "body")?.to_vec();
        out.write(into_handle(c2d_message::outgoing(Message::new(body))));
        Ok(())
    })
}

/// Frees a message. A received message that was not settled is given up: it stays locked at
/// the hub and is delivered again when its lock ends (IoT Hub: 60 s).
///
/// @param message The message, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once per message, when no other call is using it.
#[no_mangle]
pub extern "C" fn c2d_message_free(message: *mut c2d_message) {
    // SAFETY: the message came from this library (the C contract).
    call_infallible(|| drop(unsafe { from_handle(message) }))
}

/// Applies a change to a message to send.
fn change(message: *mut c2d_message, f: impl FnOnce(Message) -> Result<Message>) -> c2d_result {
    call(|| {
        let m = get_mut(message, "message")?;
        if m.received.is_some() {
            return Err(invalid("a received message cannot be changed"));
        }
        m.message = f(std::mem::take(&mut m.message))?;
        m.text = Texts::of(&m.message);
        Ok(())
    })
}

/// Sets the message id (`message-id`). Without one, `c2d_service_client_send` makes a UUID.
///
/// @param message A message made by `c2d_message_new`.
/// @param message_id The id (copied).
/// @retval C2D_RESULT_OK The id was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
///         received.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_message_id(
    message: *mut c2d_message,
    message_id: *const c_char,
) -> c2d_result {
    change(message, |m| {
        Ok(m.message_id(text(message_id, "message_id")?))
    })
}

/// Sets the correlation id (`correlation-id`).
///
/// @param message A message made by `c2d_message_new`.
/// @param correlation_id The id (copied).
/// @retval C2D_RESULT_OK The id was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
///         received.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_correlation_id(
    message: *mut c2d_message,
    correlation_id: *const c_char,
) -> c2d_result {
    change(message, |m| {
        Ok(m.correlation_id(text(correlation_id, "correlation_id")?))
    })
}

/// Sets the user id (`user-id`, binary).
///
/// @param message A message made by `c2d_message_new`.
/// @param user_id The id's bytes (copied; may be NULL when `user_id_len` is 0).
/// @param user_id_len Its length.
/// @retval C2D_RESULT_OK The id was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the message was received.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_user_id(
    message: *mut c2d_message,
    user_id: *const u8,
    user_id_len: usize,
) -> c2d_result {
    change(message, |mut m| {
        m.user_id = Some(bytes(user_id, user_id_len, "user_id")?.to_vec());
        Ok(m)
    })
}

/// Sets which outcomes produce feedback (`iothub-ack`); `C2D_ACK_NONE` by default.
///
/// @param message A message made by `c2d_message_new`.
/// @param ack One of `C2D_ACK_NONE`, `C2D_ACK_POSITIVE`, `C2D_ACK_NEGATIVE`, `C2D_ACK_FULL`.
/// @retval C2D_RESULT_OK The ack mode was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or received, or `ack` is not a
///         `c2d_ack`.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_ack(message: *mut c2d_message, ack: c2d_ack) -> c2d_result {
    change(message, |m| Ok(m.ack(ack_of(ack)?)))
}

/// Sets the time to live: the message expires `ttl_ms` from now (the hub's default is one
/// hour, its maximum two days). An expired message is dead-lettered with `Expired` feedback.
///
/// @param message A message made by `c2d_message_new`.
/// @param ttl_ms The time to live in milliseconds, counted from this call.
/// @retval C2D_RESULT_OK The expiry was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or received.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_ttl_ms(message: *mut c2d_message, ttl_ms: u32) -> c2d_result {
    change(message, |m| Ok(m.ttl(Duration::from_millis(ttl_ms.into()))))
}

/// Sets the content type (`content-type`, `$.ct` on MQTT).
///
/// @param message A message made by `c2d_message_new`.
/// @param content_type The content type (copied), for example `"application/json"`.
/// @retval C2D_RESULT_OK The content type was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
///         received.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_content_type(
    message: *mut c2d_message,
    content_type: *const c_char,
) -> c2d_result {
    change(message, |m| {
        Ok(m.content_type(text(content_type, "content_type")?))
    })
}

/// Sets the content encoding (`content-encoding`, `$.ce` on MQTT).
///
/// @param message A message made by `c2d_message_new`.
/// @param content_encoding The content encoding (copied), for example `"utf-8"`.
/// @retval C2D_RESULT_OK The content encoding was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
///         received.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_content_encoding(
    message: *mut c2d_message,
    content_encoding: *const c_char,
) -> c2d_result {
    change(message, |m| {
        Ok(m.content_encoding(text(content_encoding, "content_encoding")?))
    })
}

/// Adds an application property, or replaces the value of the one with this name.
///
/// @param message A message made by `c2d_message_new`.
/// @param name The property name (copied).
/// @param value The property value (copied).
/// @retval C2D_RESULT_OK The property was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
///         received.
///
/// Thread safety: not concurrently with other calls on the same message.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_set_property(
    message: *mut c2d_message,
    name: *const c_char,
    value: *const c_char,
) -> c2d_result {
    change(message, |m| {
        Ok(m.property(text(name, "name")?, text(value, "value")?))
    })
}

/// Reads the body.
///
/// @param message The message.
/// @param out_body Receives a pointer to the body, owned by the message (not NUL-terminated;
///                 NULL when the body is empty).
/// @param out_body_len Receives the body's length in bytes.
/// @retval C2D_RESULT_OK The body was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_body(
    message: *const c2d_message,
    out_body: *mut *const u8,
    out_body_len: *mut usize,
) -> c2d_result {
    call(|| {
        let (out, out_len) = (
            Out::new(out_body, "out_body")?,
            Out::new(out_body_len, "out_body_len")?,
        );
        let body = &get(message, "message")?.message().body;
        out.write(if body.is_empty() {
            std::ptr::null()
        } else {
            body.as_ptr()
        });
        out_len.write(body.len());
        Ok(())
    })
}

/// Reads the message id (`message-id`, as text: UUIDs lowercase and hyphenated, numbers in
/// decimal, binary ids in hex).
///
/// @param message The message.
/// @param out_value Receives the id, NUL-terminated and owned by the message, or NULL when the
///                  message has none.
/// @retval C2D_RESULT_OK The id was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_message_id(
    message: *const c2d_message,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(message, "message", out_value, "message id", |m| {
        &m.text.message_id
    })
}

/// Reads the correlation id (`correlation-id`, as text).
///
/// @param message The message.
/// @param out_value Receives the id, owned by the message, or NULL when there is none.
/// @retval C2D_RESULT_OK The id was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_correlation_id(
    message: *const c2d_message,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(message, "message", out_value, "correlation id", |m| {
        &m.text.correlation_id
    })
}

/// Reads the `to` address (`/devices/{id}/messages/devicebound`).
///
/// @param message The message.
/// @param out_value Receives the address, owned by the message, or NULL when there is none.
/// @retval C2D_RESULT_OK The address was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The address holds a NUL byte.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_to(
    message: *const c2d_message,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(message, "message", out_value, "to address", |m| &m.text.to)
}

/// Reads the content type.
///
/// @param message The message.
/// @param out_value Receives the content type, owned by the message, or NULL when unset.
/// @retval C2D_RESULT_OK The content type was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The value holds a NUL byte.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_content_type(
    message: *const c2d_message,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(message, "message", out_value, "content type", |m| {
        &m.text.content_type
    })
}

/// Reads the content encoding.
///
/// @param message The message.
/// @param out_value Receives the content encoding, owned by the message, or NULL when unset.
/// @retval C2D_RESULT_OK The content encoding was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The value holds a NUL byte.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_content_encoding(
    message: *const c2d_message,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(message, "message", out_value, "content encoding", |m| {
        &m.text.content_encoding
    })
}

/// Reads the lock token of a message received over AMQP.
///
/// @param message The message.
/// @param out_value Receives the lock token, owned by the message, or NULL when there is none
///                  (MQTT does not carry it; messages to send have none).
/// @retval C2D_RESULT_OK The lock token was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_lock_token(
    message: *const c2d_message,
    out_value: *mut *const c_char,
) -> c2d_result {
    const ABSENT: CText = CText::Absent;
    read_text(message, "message", out_value, "lock token", |m| {
        m.received.as_ref().map_or(&ABSENT, |r| &r.lock_token)
    })
}

/// Reads the user id (`user-id`, binary).
///
/// @param message The message.
/// @param out_value Receives the bytes, owned by the message, or NULL when there is none.
/// @param out_len Receives their length (0 when there is none).
/// @retval C2D_RESULT_OK The user id was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_user_id(
    message: *const c2d_message,
    out_value: *mut *const u8,
    out_len: *mut usize,
) -> c2d_result {
    call(|| {
        let (out, out_len) = (
            Out::new(out_value, "out_value")?,
            Out::new(out_len, "out_len")?,
        );
        let id = get(message, "message")?.message().user_id.as_deref();
        out.write(id.map_or(std::ptr::null(), <[u8]>::as_ptr));
        out_len.write(id.map_or(0, <[u8]>::len));
        Ok(())
    })
}

/// Reads one number of a message through `pick`.
fn read_number<T>(
    message: *const c2d_message,
    out_value: *mut T,
    pick: impl FnOnce(&c2d_message) -> T,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_value, "out_value")?;
        out.write(pick(get(message, "message")?));
        Ok(())
    })
}

fn millis(t: Option<SystemTime>) -> i64 {
    t.map_or(0, to_unix_millis)
}

/// Reads when the message expires (`absolute-expiry-time`).
///
/// @param message The message.
/// @param out_value Receives the expiry in milliseconds since the Unix epoch, or 0 when the
///                  message has none (the hub then applies its default TTL).
/// @retval C2D_RESULT_OK The expiry was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_expiry_time_ms(
    message: *const c2d_message,
    out_value: *mut i64,
) -> c2d_result {
    read_number(message, out_value, |m| millis(m.message().expiry_time))
}

/// Reads when the hub accepted the message (AMQP only).
///
/// @param message The message.
/// @param out_value Receives milliseconds since the Unix epoch, or 0 when unknown (MQTT, or a
///                  message to send).
/// @retval C2D_RESULT_OK The time was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_enqueued_time_ms(
    message: *const c2d_message,
    out_value: *mut i64,
) -> c2d_result {
    read_number(message, out_value, |m| {
        millis(
            m.received
                .as_ref()
                .and_then(|r| r.settle.delivered().enqueued_time),
        )
    })
}

/// Reads the ack mode (`iothub-ack`).
///
/// @param message The message.
/// @param out_value Receives a `c2d_ack` (`C2D_ACK_NONE` when unset).
/// @retval C2D_RESULT_OK The ack mode was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_ack(
    message: *const c2d_message,
    out_value: *mut c2d_ack,
) -> c2d_result {
    read_number(message, out_value, |m| ack_code(m.message().ack_mode()))
}

/// Reads how many times the message was abandoned before this delivery (AMQP only).
///
/// @param message The message.
/// @param out_value Receives the count (0 over MQTT, which does not carry it, and for
///                  messages to send).
/// @retval C2D_RESULT_OK The count was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_delivery_count(
    message: *const c2d_message,
    out_value: *mut u32,
) -> c2d_result {
    read_number(message, out_value, |m| {
        m.received
            .as_ref()
            .map_or(0, |r| r.settle.delivered().delivery_count)
    })
}

/// Reads the hub's sequence number of the message (AMQP only).
///
/// @param message The message.
/// @param out_value Receives the sequence number (0 when unknown).
/// @retval C2D_RESULT_OK The number was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_sequence_number(
    message: *const c2d_message,
    out_value: *mut u64,
) -> c2d_result {
    read_number(message, out_value, |m| {
        m.received
            .as_ref()
            .and_then(|r| r.settle.delivered().sequence_number)
            .unwrap_or(0)
    })
}

/// Counts the application properties.
///
/// @param message The message.
/// @param out_count Receives the number of properties.
/// @retval C2D_RESULT_OK The properties were counted.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_property_count(
    message: *const c2d_message,
    out_count: *mut usize,
) -> c2d_result {
    read_number(message, out_count, |m| m.text.properties.len())
}

/// Reads the application property at `index` (in the order the sender set them), to iterate
/// over all of them with `c2d_message_property_count`.
///
/// @param message The message.
/// @param index From 0 to the property count - 1.
/// @param out_name Receives the name, NUL-terminated and owned by the message.
/// @param out_value Receives the value, NUL-terminated and owned by the message.
/// @retval C2D_RESULT_OK The property was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or `index` is out of range.
/// @retval C2D_RESULT_PROTOCOL The name or value holds a NUL byte.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_property_at(
    message: *const c2d_message,
    index: usize,
    out_name: *mut *const c_char,
    out_value: *mut *const c_char,
) -> c2d_result {
    call(|| {
        let (out_name, out_value) = (
            Out::new(out_name, "out_name")?,
            Out::new(out_value, "out_value")?,
        );
        let m = get(message, "message")?;
        let (name, value) = m.text.properties.get(index).ok_or_else(|| {
            invalid(format!(
                "property index {index} is out of range (the message has {})",
                m.text.properties.len()
            ))
        })?;
        let (name, value) = (name.ptr("property name")?, value.ptr("property value")?);
        out_name.write(name);
        out_value.write(value);
        Ok(())
    })
}

/// Reads the value of the application property called `name`.
///
/// @param message The message.
/// @param name The property name.
/// @param out_value Receives the value, owned by the message, or NULL when the message has no
///                  property of that name.
/// @retval C2D_RESULT_OK The property was looked up.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `name` is not UTF-8.
/// @retval C2D_RESULT_PROTOCOL The value holds a NUL byte.
///
/// Thread safety: callable from any thread while the message is not being changed or freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_property(
    message: *const c2d_message,
    name: *const c_char,
    out_value: *mut *const c_char,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_value, "out_value")?;
        let (m, name) = (get(message, "message")?, text(name, "name")?);
        let found = m.message().properties.iter().position(|(k, _)| k == name);
        out.write(match found {
            Some(i) => m.text.properties[i].1.ptr("property value")?,
            None => std::ptr::null(),
        });
        Ok(())
    })
}

fn settle(message: *mut c2d_message, how: Settlement) -> c2d_result {
    call(|| {
        let m = get(message, "message")?;
        let received = m
            .received
            .as_ref()
            .ok_or_else(|| invalid("only a received message can be settled"))?;
        // MQTT and AMQP: queued, no answer to wait for (no runtime entered)
        if let Some(result) = received.settle.settle_now(how) {
            return result;
        }
        let r = received.settle.take(how)?;
        block_on(r.settle(how))?
    })
}

/// Completes a received message: the hub removes it (and sends `Success` feedback if the
/// sender asked). Over MQTT this sends the PUBACK, after those of messages received before it.
/// Over MQTT and AMQP the settlement is a frame the hub does not answer: this returns once it
/// is queued (a connection lost before it is written means the hub delivers the message
/// again, as when the frame is lost on the way); over HTTPS it waits for the hub's answer.
/// The message stays the caller's to free.
///
/// @param message A received message.
/// @retval C2D_RESULT_OK The message was completed.
/// @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or was not received.
/// @retval C2D_RESULT_ALREADY_SETTLED The message was completed, rejected or abandoned before
///         (also after a failed attempt: a settle call the transport can make uses the
///         message up; an MQTT reject or abandon does not).
/// @retval C2D_RESULT_MESSAGE_LOCK_LOST The lock ended or its connection was lost; the hub
///         delivers the message again.
/// @retval C2D_RESULT_CLOSED The client that received it was closed.
///
/// Thread safety: callable from any thread, including the client's message callback.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_complete(message: *mut c2d_message) -> c2d_result {
    settle(message, Settlement::Complete)
}

/// Rejects a received message: the hub dead-letters it (`Rejected` feedback). AMQP and HTTPS.
///
/// @param message A received message.
/// @retval C2D_RESULT_OK The message was rejected.
/// @retval C2D_RESULT_UNSUPPORTED The client uses MQTT, which cannot reject. Nothing is sent
///         and nothing changes: the message is still the caller's to complete.
/// @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or was not received.
/// @retval C2D_RESULT_ALREADY_SETTLED The message was settled before.
/// @retval C2D_RESULT_MESSAGE_LOCK_LOST The lock ended or its connection was lost.
/// @retval C2D_RESULT_CLOSED The client that received it was closed.
///
/// Thread safety: callable from any thread, including the client's message callback.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_reject(message: *mut c2d_message) -> c2d_result {
    settle(message, Settlement::Reject)
}

/// Abandons a received message: the hub queues it again with its delivery count one higher;
/// at the hub's maximum (IoT Hub: 10) it is dead-lettered (`DeliveryCountExceeded`). AMQP and
/// HTTPS.
///
/// @param message A received message.
/// @retval C2D_RESULT_OK The message was abandoned.
/// @retval C2D_RESULT_UNSUPPORTED The client uses MQTT, which cannot abandon. Nothing is sent
///         and nothing changes: the message is still the caller's to complete.
/// @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or was not received.
/// @retval C2D_RESULT_ALREADY_SETTLED The message was settled before.
/// @retval C2D_RESULT_MESSAGE_LOCK_LOST The lock ended or its connection was lost.
/// @retval C2D_RESULT_CLOSED The client that received it was closed.
///
/// Thread safety: callable from any thread, including the client's message callback.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_message_abandon(message: *mut c2d_message) -> c2d_result {
    settle(message, Settlement::Abandon)
}
