//! The service client: send, wait for a message's outcome, read feedback, purge, close.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use c2d_core::{
    Error, ErrorKind, FeedbackReceiver, Pem, SentMessage, ServiceClient, ServiceOptions,
    ServiceTransport,
};

use crate::args::{dial_port, from_handle, get, into_handle, set_option, text, Out};
use crate::error::{c2d_result, call, call_infallible, invalid};
use crate::message::c2d_message;
use crate::retry::{c2d_retry_policy, policy_of};
use crate::runtime::{block_on, block_on_for};
use crate::service::feedback::c2d_feedback_record;
use crate::tls::{pem_arg, read_ca_file};

/// How a service client talks to the hub.
pub type c2d_service_transport = u32;
/// AMQP 1.0 over TLS, port 5671 (the default).
pub const C2D_SERVICE_TRANSPORT_AMQP: c2d_service_transport = 0;
/// AMQP over WebSockets over TLS, port 443.
pub const C2D_SERVICE_TRANSPORT_AMQP_WS: c2d_service_transport = 1;

/// Options for `c2d_service_client_connect`: made by `c2d_service_options_new`, changed by
/// the setters, copied by the connect call, freed by `c2d_service_options_free`.
#[derive(Default)]
pub struct c2d_service_options(ServiceOptions);

/// Makes service options with every setting at its default.
///
/// @param out_options Receives the options, owned by the caller (free them with
///                    `c2d_service_options_free`).
/// @retval C2D_RESULT_OK The options were made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_new(
    out_options: *mut *mut c2d_service_options,
) -> c2d_result {
    call(|| {
        Out::new(out_options, "out_options")?.write(into_handle(c2d_service_options::default()));
        Ok(())
    })
}

/// Frees service options. Clients connected with them keep their own copy.
///
/// @param options The options, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once per options object.
#[no_mangle]
pub extern "C" fn c2d_service_options_free(options: *mut c2d_service_options) {
    // SAFETY: the options came from c2d_service_options_new (the C contract).
    call_infallible(|| drop(unsafe { from_handle(options) }))
}

/// Chooses the transport (`C2D_SERVICE_TRANSPORT_AMQP` by default).
///
/// @param options The options.
/// @param transport One of the `C2D_SERVICE_TRANSPORT_*` values.
/// @retval C2D_RESULT_OK The transport was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `transport` is not a transport.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_transport(
    options: *mut c2d_service_options,
    transport: c2d_service_transport,
) -> c2d_result {
    set_option(options, |o| {
        o.0.transport = match transport {
            C2D_SERVICE_TRANSPORT_AMQP => ServiceTransport::Amqp,
            C2D_SERVICE_TRANSPORT_AMQP_WS => ServiceTransport::AmqpWs,
            other => return Err(invalid(format!("{other} is not a c2d_service_transport"))),
        };
        Ok(())
    })
}

/// Trusts the CA certificates in `pem` (for example a local hub's dev CA) instead of the
/// system's roots, for AMQP and for REST.
///
/// @param options The options.
/// @param pem PEM text of one or more certificates (copied).
/// @param pem_len Its length in bytes.
/// @retval C2D_RESULT_OK The CA was set (it is parsed at connect).
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `pem_len` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_trusted_ca_pem(
    options: *mut c2d_service_options,
    pem: *const u8,
    pem_len: usize,
) -> c2d_result {
    set_option(options, |o| {
        o.0.connection.trusted_ca = Some(Pem::Text(pem_arg(pem, pem_len)?));
        Ok(())
    })
}

/// Trusts the CA certificates in the PEM file at `path` instead of the system's roots.
///
/// @param options The options.
/// @param path The file's path; it is read now.
/// @retval C2D_RESULT_OK The file was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the file cannot be read or is
///         empty.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_trusted_ca_file(
    options: *mut c2d_service_options,
    path: *const c_char,
) -> c2d_result {
    set_option(options, |o| {
        o.0.connection.trusted_ca = Some(Pem::Text(read_ca_file(text(path, "path")?)?));
        Ok(())
    })
}

/// Overrides the AMQP port (5671, or 443 for AMQP over WebSockets), for a local hub on
/// non-standard ports.
///
/// @param options The options.
/// @param port The TCP port.
/// @retval C2D_RESULT_OK The port was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `port` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_port(
    options: *mut c2d_service_options,
    port: u16,
) -> c2d_result {
    set_option(options, |o| {
        o.0.connection.port = Some(dial_port(port)?);
        Ok(())
    })
}

/// Overrides the HTTPS port of the REST calls (registry, purge; 443 by default).
///
/// @param options The options.
/// @param port The TCP port.
/// @retval C2D_RESULT_OK The port was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `port` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_https_port(
    options: *mut c2d_service_options,
    port: u16,
) -> c2d_result {
    set_option(options, |o| {
        o.0.connection.https_port = Some(dial_port(port)?);
        Ok(())
    })
}

/// Reaches the hub through an HTTP proxy (`CONNECT`): the registry, purge and feedback over
/// REST, and AMQP over WebSockets, which a proxy needs (`C2D_SERVICE_TRANSPORT_AMQP_WS`;
/// connecting with plain AMQP and a proxy fails with `C2D_RESULT_INVALID_ARGUMENT`). No proxy
/// by default: the environment is not read (pass `getenv("HTTPS_PROXY")` to use its proxy).
///
/// @param options The options.
/// @param url `http://[user:password@]host[:port]` (user and password percent-encoded).
/// @retval C2D_RESULT_OK The proxy was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or the URL is not an HTTP proxy's.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_proxy(
    options: *mut c2d_service_options,
    url: *const c_char,
) -> c2d_result {
    set_option(options, |o| {
        o.0.connection.proxy = Some(c2d_core::Proxy::parse(text(url, "url")?)?);
        Ok(())
    })
}

/// Sets the retry policy for connecting and operations (exponential back-off with jitter by
/// default).
///
/// @param options The options.
/// @param policy The policy (copied; the caller keeps and frees it).
/// @retval C2D_RESULT_OK The policy was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_retry(
    options: *mut c2d_service_options,
    policy: *const c2d_retry_policy,
) -> c2d_result {
    set_option(options, |o| {
        o.0.connection.retry = policy_of(policy)?;
        Ok(())
    })
}

/// Sets how long one attempt of an operation may take (30 s by default).
///
/// @param options The options.
/// @param timeout_ms The limit in milliseconds (at least 1).
/// @retval C2D_RESULT_OK The timeout was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `timeout_ms` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_options_set_timeout_ms(
    options: *mut c2d_service_options,
    timeout_ms: u32,
) -> c2d_result {
    set_option(options, |o| {
        o.0.connection.timeout = crate::args::timeout_ms(timeout_ms)?;
        Ok(())
    })
}

/// A back-end's connection to the hub: sends, feedback, purge and the device registry.
///
/// Made by `c2d_service_client_connect`, freed by `c2d_service_client_free`. Every function
/// may be called from any thread, concurrently, except `_free`, which must be the last call.
pub struct c2d_service_client {
    pub(crate) client: ServiceClient,
    closed: AtomicBool,
    /// The subscription `c2d_service_client_feedback_receive` reads, made by its first call.
    feedback: tokio::sync::Mutex<Option<FeedbackReceiver>>,
}

impl c2d_service_client {
    /// Closes the connection once.
    fn close(&self) -> c2d_core::Result<()> {
        if !self.closed.swap(true, Ordering::SeqCst) {
            block_on(self.client.close())?;
        }
        Ok(())
    }

    pub(crate) fn check_open(&self) -> c2d_core::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Closed,
                "the service client was closed",
            ));
        }
        Ok(())
    }
}

/// Connects a back-end to the hub with a policy connection string.
///
/// @param connection_string `HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`; the
///        policy needs ServiceConnect to send and read feedback, RegistryWrite to create
///        devices.
/// @param options Options, or NULL for the defaults (AMQP, system CAs, standard ports).
///                Copied: the caller keeps and frees them.
/// @param out_client Receives the client, owned by the caller (free it with
///                   `c2d_service_client_free`).
/// @retval C2D_RESULT_OK Connected.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the connection string or CA is
///         malformed.
/// @retval C2D_RESULT_UNAUTHORIZED The hub refused the credentials.
/// @retval C2D_RESULT_UNAVAILABLE The hub could not be reached (after the retries).
/// @retval C2D_RESULT_TIMEOUT Connecting took longer than the timeout.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_client_connect(
    connection_string: *const c_char,
    options: *const c2d_service_options,
    out_client: *mut *mut c2d_service_client,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_client, "out_client")?;
        let cs = text(connection_string, "connection_string")?;
        let default = c2d_service_options::default();
        // SAFETY: NULL means the defaults; otherwise options from c2d_service_options_new.
        let opts = unsafe { options.as_ref() }.unwrap_or(&default);
        let builder = ServiceClient::builder(cs)?.options(opts.0.clone());
        let client = block_on(builder.connect())??;
        out.write(into_handle(c2d_service_client {
            client,
            closed: AtomicBool::new(false),
            feedback: tokio::sync::Mutex::new(None),
        }));
        Ok(())
    })
}

/// A sent message: its id, and a way to wait for its own feedback record.
/// Owned by the caller, freed with `c2d_sent_message_free`.
pub struct c2d_sent_message {
    sent: SentMessage,
    message_id: CString,
}

impl c2d_sent_message {
    /// A sent message with its id as C text.
    pub(crate) fn new(sent: SentMessage, message_id: CString) -> Self {
        c2d_sent_message { sent, message_id }
    }
}

/// Sends a message to a device's queue, waiting until the hub has accepted it (stored it
/// durably). Without a message id, a UUID is made for it.
///
/// @param client The client.
/// @param device_id The device.
/// @param message The message (made by `c2d_message_new`; the caller keeps and frees it).
/// @param out_sent Receives the sent message, owned by the caller (free it with
///                 `c2d_sent_message_free`), to read its id or wait for its outcome. May be
///                 NULL when neither is needed.
/// @retval C2D_RESULT_OK The hub accepted the message.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `device_id` is not UTF-8.
/// @retval C2D_RESULT_DEVICE_NOT_FOUND The device is not registered.
/// @retval C2D_RESULT_QUEUE_FULL The device's queue is full (IoT Hub: 50 messages).
/// @retval C2D_RESULT_MESSAGE_TOO_LARGE The message is larger than the hub accepts (64 KB).
/// @retval C2D_RESULT_UNAUTHORIZED The policy lacks ServiceConnect.
/// @retval C2D_RESULT_UNAVAILABLE, C2D_RESULT_TIMEOUT The hub could not be reached in time
///         (after the retries).
/// @retval C2D_RESULT_CLOSED The client was closed, before or during the call (another thread
///         closing the client ends the wait at once; the message may then have reached the
///         hub, as when a send times out).
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_client_send(
    client: *const c2d_service_client,
    device_id: *const c_char,
    message: *const c2d_message,
    out_sent: *mut *mut c2d_sent_message,
) -> c2d_result {
    call(|| {
        let c = get(client, "client")?;
        let device_id = text(device_id, "device_id")?;
        let message = get(message, "message")?.message().clone();
        c.check_open()?;
        let sent = block_on(c.client.send(device_id, message))??;
        if let Some(out) = std::ptr::NonNull::new(out_sent) {
            let message_id = CString::new(sent.message_id())
                .map_err(|_| invalid("the message id holds a NUL byte"))?;
            // SAFETY: a non-NULL out-parameter given by the caller.
            unsafe {
                out.as_ptr()
                    .write(into_handle(c2d_sent_message { sent, message_id }))
            };
        }
        Ok(())
    })
}

/// Reads the id of a sent message (the one it was given, or the one made for it).
///
/// @param sent The sent message.
/// @param out_message_id Receives the id, NUL-terminated and owned by `sent`.
/// @retval C2D_RESULT_OK The id was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while `sent` is not being freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_sent_message_id(
    sent: *const c2d_sent_message,
    out_message_id: *mut *const c_char,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_message_id, "out_message_id")?;
        out.write(get(sent, "sent")?.message_id.as_ptr());
        Ok(())
    })
}

/// Waits for this message's own feedback record. The message's ack mode decides which
/// outcomes produce one: with `C2D_ACK_POSITIVE` a rejected message produces none, with
/// `C2D_ACK_NEGATIVE` a completed one produces none; the timeout ends such waits.
///
/// The records come from the hub's one feedback endpoint, which IoT Hub gives to one reader
/// at a time: two service clients open on one hub take records from each other, and a record
/// can reach the client that did not send its message. Keep one client per hub, or free one
/// before connecting the next.
///
/// The hub batches the records: one made after a quiet feedback interval (IoT Hub: about
/// 15 s) goes out at once, the next ones once that interval has passed since the batch
/// before. A local hub started with `c2d_hub_options_use_manual_clock` counts that interval on
/// its clock: a second outcome comes only after `c2d_hub_advance_clock` moves it past it.
///
/// @param sent The sent message.
/// @param timeout_ms How long to wait, in milliseconds, or `C2D_TIMEOUT_INFINITE`.
/// @param out_record Receives the record, owned by the caller (free it with
///                   `c2d_feedback_record_free`).
/// @retval C2D_RESULT_OK The record arrived.
/// @retval C2D_RESULT_TIMEOUT No record within `timeout_ms`.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the message was sent with
///         `C2D_ACK_NONE`.
/// @retval C2D_RESULT_CLOSED The client was closed, before or during the wait (another thread
///         closing the client with `c2d_service_client_close` ends the wait at once).
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_sent_message_wait_outcome(
    sent: *const c2d_sent_message,
    timeout_ms: u32,
    out_record: *mut *mut c2d_feedback_record,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_record, "out_record")?;
        let s = get(sent, "sent")?;
        let record = block_on_for(timeout_ms, "the message's feedback", s.sent.outcome())??;
        out.write(into_handle(c2d_feedback_record::new(record)));
        Ok(())
    })
}

/// Frees a sent message (the message itself is at the hub; nothing is cancelled).
///
/// @param sent The sent message, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once, when no other call is using it.
#[no_mangle]
pub extern "C" fn c2d_sent_message_free(sent: *mut c2d_sent_message) {
    // SAFETY: `sent` came from c2d_service_client_send (the C contract).
    call_infallible(|| drop(unsafe { from_handle(sent) }))
}

/// Waits up to `timeout_ms` for the next feedback record of any message. The hub's feedback
/// queue is one for the whole hub: the client reads it and hands each record both to the
/// waiter of that message (`c2d_sent_message_wait_outcome`) and to this call. Records that
/// arrived before the first call of this function on a client are not returned by it.
///
/// @param client The client.
/// @param timeout_ms How long to wait, in milliseconds, or `C2D_TIMEOUT_INFINITE`.
/// @param out_record Receives the record, owned by the caller (free it with
///                   `c2d_feedback_record_free`).
/// @retval C2D_RESULT_OK A record arrived.
/// @retval C2D_RESULT_TIMEOUT No record within `timeout_ms`.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_UNAUTHORIZED The policy lacks ServiceConnect.
/// @retval C2D_RESULT_CLOSED The client was closed, before or during the wait (another thread
///         closing the client with `c2d_service_client_close` ends the wait at once).
///
/// Thread safety: callable from any thread; concurrent callers take turns.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_client_feedback_receive(
    client: *const c2d_service_client,
    timeout_ms: u32,
    out_record: *mut *mut c2d_feedback_record,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_record, "out_record")?;
        let c = get(client, "client")?;
        c.check_open()?;
        let next = block_on_for(timeout_ms, "a feedback record", async {
            let mut feedback = c.feedback.lock().await;
            let receiver = match feedback.as_mut() {
                Some(r) => r,
                None => feedback.insert(c.client.feedback()?),
            };
            receiver
                .recv()
                .await
                .ok_or_else(|| Error::new(ErrorKind::Closed, "the service client was closed"))
        })??;
        out.write(into_handle(c2d_feedback_record::new(next)));
        Ok(())
    })
}

/// Removes every message queued for a device (`Purged` feedback for those that asked).
///
/// @param client The client.
/// @param device_id The device.
/// @param out_purged Receives how many messages were removed.
/// @retval C2D_RESULT_OK The queue was purged.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `device_id` is not UTF-8.
/// @retval C2D_RESULT_DEVICE_NOT_FOUND The device is not registered.
/// @retval C2D_RESULT_UNAUTHORIZED The policy lacks ServiceConnect.
/// @retval C2D_RESULT_CLOSED The client was closed.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_client_purge(
    client: *const c2d_service_client,
    device_id: *const c_char,
    out_purged: *mut u64,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_purged, "out_purged")?;
        let c = get(client, "client")?;
        let device_id = text(device_id, "device_id")?;
        c.check_open()?;
        let r = block_on(c.client.purge(device_id))??;
        out.write(r.total_messages_purged);
        Ok(())
    })
}

/// Closes the connection; the calls other threads are blocked in (sends, purges, outcome
/// waits, feedback reads) end at once with `C2D_RESULT_CLOSED`, and so do later calls. This is
/// how another thread stops a waiting one; free the client only once that one has returned.
/// Closing twice is not an error.
///
/// @param client The client.
/// @retval C2D_RESULT_OK Closed.
/// @retval C2D_RESULT_INVALID_ARGUMENT `client` is NULL.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_service_client_close(client: *const c2d_service_client) -> c2d_result {
    call(|| get(client, "client")?.close())
}

/// Closes the client (as `c2d_service_client_close`) and frees it.
///
/// @param client The client, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once, when no other call is using the client.
#[no_mangle]
pub extern "C" fn c2d_service_client_free(client: *mut c2d_service_client) {
    call_infallible(|| {
        // SAFETY: the client came from c2d_service_client_connect and is freed once.
        if let Some(c) = unsafe { from_handle(client) } {
            let _ = c.close();
        }
    })
}
