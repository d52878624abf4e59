//! The device client: connect, receive (pull or callback), connection status, close.

use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use c2d_core::{ConnectionStatus, DeviceClient, DeviceOptions, Error, ErrorKind, Pem, Transport};
use tokio::sync::watch;

use crate::args::{dial_port, from_handle, get, into_handle, set_option, text, Out};
use crate::error::{c2d_result, call, invalid};
use crate::message::c2d_message;
use crate::retry::{c2d_retry_policy, policy_of, UserData};
use crate::runtime::{block_on, block_on_for};
use crate::tls::{checked_certificate, read_ca_file};

/// How a device client talks to the hub.
pub type c2d_transport = u32;
/// MQTT 3.1.1 over TLS, port 8883 (the default).
pub const C2D_TRANSPORT_MQTT: c2d_transport = 0;
/// MQTT over WebSockets over TLS, port 443.
pub const C2D_TRANSPORT_MQTT_WS: c2d_transport = 1;
/// AMQP 1.0 over TLS, port 5671 (with HTTPS, the transports that can reject and abandon).
pub const C2D_TRANSPORT_AMQP: c2d_transport = 2;
/// AMQP over WebSockets over TLS, port 443.
pub const C2D_TRANSPORT_AMQP_WS: c2d_transport = 3;
/// HTTPS polling, port 443: every settlement; messages arrive when the client polls (at
/// connect, then every poll interval, 25 minutes by default: see
/// `c2d_device_options_set_poll_interval_ms`).
pub const C2D_TRANSPORT_HTTPS: c2d_transport = 4;

fn transport_of(code: c2d_transport) -> c2d_core::Result<Transport> {
    match code {
        C2D_TRANSPORT_MQTT => Ok(Transport::Mqtt),
        C2D_TRANSPORT_MQTT_WS => Ok(Transport::MqttWs),
        C2D_TRANSPORT_AMQP => Ok(Transport::Amqp),
        C2D_TRANSPORT_AMQP_WS => Ok(Transport::AmqpWs),
        C2D_TRANSPORT_HTTPS => Ok(Transport::Https),
        other => Err(invalid(format!("{other} is not a c2d_transport"))),
    }
}

/// Whether this library carries `transport`: every transport unless it was built for firmware
/// with fewer (`make install TRANSPORTS=mqtt`); connecting with one it lacks is
/// `C2D_RESULT_UNSUPPORTED`. False for a value that is no `c2d_transport`.
///
/// Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn c2d_transport_available(transport: c2d_transport) -> bool {
    transport_of(transport).is_ok_and(Transport::is_available)
}

/// Where a client's connection stands.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum c2d_connection_status {
    /// Connected and authorized.
    Connected = 0,
    /// Not connected; the reason says why.
    Disconnected = 1,
    /// Trying to connect again.
    Reconnecting = 2,
}

/// Receives a message on the client's callback thread.
///
/// @param user_data The pointer given with the callback.
/// @param message The message, now owned by the callback: settle it (here or on any other
///                thread) and free it with `c2d_message_free`.
///
/// Called serially on one library thread per client; it should return quickly (the next
/// message waits for it). It may settle and free the message, and may call
/// `c2d_device_client_close` on its own client, but not `c2d_device_client_free`.
pub type c2d_message_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, message: *mut c2d_message)>;

/// Receives a connection status change on the client's callback thread.
///
/// @param user_data The pointer given with the callback.
/// @param status The new status.
/// @param reason Why, for `C2D_CONNECTION_STATUS_DISCONNECTED` (NULL otherwise); valid only
///               during the call.
///
/// Called first with the status at connect (`C2D_CONNECTION_STATUS_CONNECTED`), then on each
/// change (a connection lost for good, say with refused credentials, ends with
/// `C2D_CONNECTION_STATUS_DISCONNECTED` and the reason), serially with the message callback on
/// the same thread; must return quickly.
pub type c2d_connection_status_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: c2d_connection_status,
        reason: *const c_char,
    ),
>;

/// Options for `c2d_device_client_connect`: made by `c2d_device_options_new`, changed by the
/// setters, copied by the connect call, freed by `c2d_device_options_free`.
#[derive(Default)]
pub struct c2d_device_options {
    /// What the engine takes whole at connect.
    options: DeviceOptions,
    on_message: Option<(
        unsafe extern "C" fn(*mut c_void, *mut c2d_message),
        UserData,
    )>,
    on_status: Option<(
        unsafe extern "C" fn(*mut c_void, c2d_connection_status, *const c_char),
        UserData,
    )>,
}

/// Makes device options with every setting at its default.
///
/// @param out_options Receives the options, owned by the caller (free them with
///                    `c2d_device_options_free`).
/// @retval C2D_RESULT_OK The options were made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_new(out_options: *mut *mut c2d_device_options) -> c2d_result {
    call(|| {
        Out::new(out_options, "out_options")?.write(into_handle(c2d_device_options::default()));
        Ok(())
    })
}

/// Frees device options. Clients connected with them keep their own copy.
///
/// @param options The options, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once per options object.
#[no_mangle]
pub extern "C" fn c2d_device_options_free(options: *mut c2d_device_options) {
    // SAFETY: the options came from c2d_device_options_new (the C contract).
    crate::error::call_infallible(|| drop(unsafe { from_handle(options) }))
}

/// Chooses the transport (`C2D_TRANSPORT_MQTT` by default).
///
/// @param options The options.
/// @param transport One of the `C2D_TRANSPORT_*` values.
/// @retval C2D_RESULT_OK The transport was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `transport` is not a transport.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_transport(
    options: *mut c2d_device_options,
    transport: c2d_transport,
) -> c2d_result {
    set_option(options, |o| {
        o.options.transport = transport_of(transport)?;
        Ok(())
    })
}

/// Trusts the CA certificates in `pem` (for example a local hub's dev CA) instead of the
/// system's roots.
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
pub extern "C" fn c2d_device_options_set_trusted_ca_pem(
    options: *mut c2d_device_options,
    pem: *const u8,
    pem_len: usize,
) -> c2d_result {
    set_option(options, |o| {
        o.options.connection.trusted_ca = Some(Pem::Text(crate::tls::pem_arg(pem, pem_len)?));
        Ok(())
    })
}

/// Trusts the CA certificates in the PEM file at `path` instead of the system's roots.
///
/// @param options The options.
/// @param path The file's path; it is read now.
/// @retval C2D_RESULT_OK The file was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the file cannot be read or is
///         empty (the last error message says why).
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_trusted_ca_file(
    options: *mut c2d_device_options,
    path: *const c_char,
) -> c2d_result {
    set_option(options, |o| {
        o.options.connection.trusted_ca = Some(Pem::Text(read_ca_file(text(path, "path")?)?));
        Ok(())
    })
}

/// Authenticates with an X.509 certificate instead of a SAS token (a device registered as
/// `selfSigned`, by the certificate's thumbprint, or `certificateAuthority`, whose certificate
/// chains to a CA registered with the hub and names the device in its common name). Needed
/// with a connection string that says `x509=true`.
///
/// @param options The options.
/// @param cert_pem The certificate, PEM (leaf first, then any intermediates; copied).
/// @param cert_len Its length in bytes.
/// @param key_pem Its private key, PEM (PKCS#8, PKCS#1 or SEC1; copied).
/// @param key_len Its length in bytes.
/// @retval C2D_RESULT_OK The certificate and key were set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or empty, or the certificate or the
///         key is not valid PEM (the last error message says which).
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_client_certificate_pem(
    options: *mut c2d_device_options,
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> c2d_result {
    set_option(options, |o| {
        let cert = crate::tls::pem_arg(cert_pem, cert_len)?;
        let key = crate::tls::pem_arg(key_pem, key_len)?;
        o.options.client_certificate = Some(checked_certificate(cert, key)?);
        Ok(())
    })
}

/// Hands each message over once: the ids of the messages the application completed or
/// rejected are remembered (the last 10 000, for 48 hours), and one that comes again (its
/// acknowledgement was lost, its connection dropped) is settled the same way without being
/// handed over, counted by `c2d_device_client_duplicates_suppressed`. Messages without a
/// message id are always handed over. Off by default.
///
/// @param options The options.
/// @param on Whether to suppress duplicates.
/// @retval C2D_RESULT_OK The option was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_suppress_duplicates(
    options: *mut c2d_device_options,
    on: bool,
) -> c2d_result {
    set_option(options, |o| {
        let file = o.options.duplicates.take().and_then(|d| d.file);
        o.options.duplicates = c2d_core::DuplicateOptions::from_options(on, file);
        Ok(())
    })
}

/// Suppresses duplicates (`c2d_device_options_set_suppress_duplicates`) with the window kept
/// in a file too: each id is written before its settlement is sent, so a process killed
/// after handling a message and before its acknowledgement reached the hub does not see it
/// again after a restart. One client at a time per file.
///
/// @param options The options.
/// @param path The file (made if missing, with its directory).
/// @retval C2D_RESULT_OK The option was set (the file is opened at connect).
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_duplicates_file(
    options: *mut c2d_device_options,
    path: *const c_char,
) -> c2d_result {
    set_option(options, |o| {
        let path = text(path, "path")?;
        o.options.duplicates = c2d_core::DuplicateOptions::from_options(true, Some(path.into()));
        Ok(())
    })
}

/// Like `c2d_device_options_set_client_certificate_pem`, from files.
///
/// @param options The options.
/// @param cert_path The certificate file (PEM); it is read now.
/// @param key_path The key file (PEM); it is read now.
/// @retval C2D_RESULT_OK The files were read and hold a certificate and a key.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, a file cannot be read, or its
///         contents are not valid PEM (the last error message says why).
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_client_certificate_files(
    options: *mut c2d_device_options,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> c2d_result {
    set_option(options, |o| {
        let cert = read_ca_file(text(cert_path, "cert_path")?)?;
        let key = read_ca_file(text(key_path, "key_path")?)?;
        o.options.client_certificate = Some(checked_certificate(cert, key)?);
        Ok(())
    })
}

/// Reaches the hub through an HTTP proxy (`CONNECT`), which carries the WebSocket and HTTPS
/// transports (`C2D_TRANSPORT_MQTT_WS`, `C2D_TRANSPORT_AMQP_WS`, `C2D_TRANSPORT_HTTPS`;
/// connecting over plain MQTT or AMQP with a proxy fails with `C2D_RESULT_INVALID_ARGUMENT`).
/// No proxy by default: the environment is not read (pass `getenv("HTTPS_PROXY")` to use
/// its proxy).
///
/// @param options The options.
/// @param url `http://[user:password@]host[:port]` (user and password percent-encoded).
/// @retval C2D_RESULT_OK The proxy was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or the URL is not an HTTP proxy's.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_proxy(
    options: *mut c2d_device_options,
    url: *const c_char,
) -> c2d_result {
    set_option(options, |o| {
        o.options.connection.proxy = Some(c2d_core::Proxy::parse(text(url, "url")?)?);
        Ok(())
    })
}

/// Overrides the port of the transport (for a local hub on non-standard ports). The host is
/// the connection string's `GatewayHostName`, else its `HostName`.
///
/// @param options The options.
/// @param port The TCP port (MQTT: 8883, AMQP: 5671, WebSockets: 443 by default).
/// @retval C2D_RESULT_OK The port was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `port` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_port(
    options: *mut c2d_device_options,
    port: u16,
) -> c2d_result {
    set_option(options, |o| {
        o.options.connection.port = Some(dial_port(port)?);
        Ok(())
    })
}

/// Sets the retry policy for connecting, reconnecting and operations (exponential back-off
/// with jitter by default).
///
/// @param options The options.
/// @param policy The policy (copied; the caller keeps and frees it).
/// @retval C2D_RESULT_OK The policy was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_retry(
    options: *mut c2d_device_options,
    policy: *const c2d_retry_policy,
) -> c2d_result {
    set_option(options, |o| {
        o.options.connection.retry = policy_of(policy)?;
        Ok(())
    })
}

/// Sets how long one attempt at connecting or settling may take (30 s by default).
///
/// @param options The options.
/// @param timeout_ms The limit in milliseconds (at least 1).
/// @retval C2D_RESULT_OK The timeout was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `timeout_ms` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_timeout_ms(
    options: *mut c2d_device_options,
    timeout_ms: u32,
) -> c2d_result {
    set_option(options, |o| {
        o.options.connection.timeout = crate::args::timeout_ms(timeout_ms)?;
        Ok(())
    })
}

/// Sets how long each SAS token the client makes from its key lives (1 hour by default);
/// the client renews it before it expires (MQTT: by reconnecting; AMQP: in band).
///
/// @param options The options.
/// @param ttl_s The token lifetime in seconds (at least 1).
/// @retval C2D_RESULT_OK The lifetime was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `ttl_s` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_sas_token_ttl_s(
    options: *mut c2d_device_options,
    ttl_s: u32,
) -> c2d_result {
    set_option(options, |o| {
        if ttl_s == 0 {
            return Err(invalid("ttl_s must be at least 1"));
        }
        o.options.connection.sas_token_ttl = Duration::from_secs(ttl_s.into());
        Ok(())
    })
}

/// Sets how many received messages may be unsettled at once (16 by default): the hub sends
/// no more until some are settled.
///
/// @param options The options.
/// @param in_flight The number of messages (at least 1).
/// @retval C2D_RESULT_OK The limit was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `in_flight` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_in_flight(
    options: *mut c2d_device_options,
    in_flight: u16,
) -> c2d_result {
    set_option(options, |o| {
        if in_flight == 0 {
            return Err(invalid("in_flight must be at least 1"));
        }
        o.options.in_flight = in_flight;
        Ok(())
    })
}

/// Sets how long an HTTPS client waits between polls once the queue is empty (25 minutes by
/// default, IoT Hub's guidance: IoT Hub throttles HTTPS receives, so poll more often only in
/// development). Each poll drains the queue. The other transports ignore it.
///
/// @param options The options.
/// @param interval_ms The interval in milliseconds (at least 1).
/// @retval C2D_RESULT_OK The interval was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `interval_ms` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_poll_interval_ms(
    options: *mut c2d_device_options,
    interval_ms: u32,
) -> c2d_result {
    set_option(options, |o| {
        if interval_ms == 0 {
            return Err(invalid("interval_ms must be at least 1"));
        }
        o.options.poll_interval = Duration::from_millis(interval_ms.into());
        Ok(())
    })
}

/// Delivers messages to `callback` on a library thread instead of through
/// `c2d_device_client_receive` (which then fails with `C2D_RESULT_INVALID_ARGUMENT`).
///
/// @param options The options.
/// @param callback The callback (see `c2d_message_callback`); must not be NULL.
/// @param user_data Passed to the callback as is; must stay valid until the client is freed.
/// @retval C2D_RESULT_OK The callback was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_message_callback(
    options: *mut c2d_device_options,
    callback: c2d_message_callback,
    user_data: *mut c_void,
) -> c2d_result {
    set_option(options, |o| {
        let cb = callback.ok_or_else(|| invalid("callback is NULL"))?;
        o.on_message = Some((cb, UserData(user_data)));
        Ok(())
    })
}

/// Reports connection status changes to `callback` on the client's callback thread.
///
/// @param options The options.
/// @param callback The callback (see `c2d_connection_status_callback`); must not be NULL.
/// @param user_data Passed to the callback as is; must stay valid until the client is freed.
/// @retval C2D_RESULT_OK The callback was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_options_set_connection_status_callback(
    options: *mut c2d_device_options,
    callback: c2d_connection_status_callback,
    user_data: *mut c_void,
) -> c2d_result {
    set_option(options, |o| {
        let cb = callback.ok_or_else(|| invalid("callback is NULL"))?;
        o.on_status = Some((cb, UserData(user_data)));
        Ok(())
    })
}

/// A device's connection to its hub.
///
/// Made by `c2d_device_client_connect`, freed by `c2d_device_client_free`. Every function
/// may be called from any thread, concurrently, except `_free`, which must be the last call.
pub struct c2d_device_client {
    client: DeviceClient,
    closed: AtomicBool,
    /// Set when messages go to a callback instead of `receive`.
    pushes_messages: bool,
    callbacks: Mutex<Option<Callbacks>>,
}

struct Callbacks {
    thread: JoinHandle<()>,
    id: ThreadId,
    stop: watch::Sender<bool>,
}

/// Runs the client's callbacks, one at a time, until told to stop or the client ends.
fn callback_loop(
    client: DeviceClient,
    options: Arc<c2d_device_options>,
    mut stop: watch::Receiver<bool>,
) {
    enum Event {
        Message(Box<c2d_message>),
        Status(ConnectionStatus),
        /// The connection was lost for good (credentials refused, retries exhausted).
        Lost(String),
        Stop,
    }
    let Ok(runtime) = c2d_core::runtime::runtime() else {
        return;
    };
    let mut status = client.status();
    let mut last: Option<ConnectionStatus> = None;
    let mut report = |s: ConnectionStatus| {
        if last.as_ref() == Some(&s) {
            return;
        }
        last = Some(s.clone());
        if let Some((cb, user_data)) = options.on_status {
            let (code, reason) = match s {
                ConnectionStatus::Connected => (c2d_connection_status::Connected, None),
                ConnectionStatus::Reconnecting => (c2d_connection_status::Reconnecting, None),
                ConnectionStatus::Disconnected(why) => (
                    c2d_connection_status::Disconnected,
                    Some(CString::new(why.replace('\0', " ")).unwrap_or_default()),
                ),
            };
            let reason_ptr = reason.as_ref().map_or(std::ptr::null(), |r| r.as_ptr());
            // SAFETY: the caller's callback, called as documented.
            unsafe { cb(user_data.0, code, reason_ptr) };
        }
    };
    report(status.current());
    let mut status_open = true;
    loop {
        let event = runtime.block_on(async {
            tokio::select! {
                // once the client is being freed no callback starts, even with messages
                // waiting: they go back to the hub with the connection
                biased;
                _ = stop.wait_for(|s| *s) => Event::Stop,
                m = client.recv(), if options.on_message.is_some() => match m {
                    Ok(Some(m)) => Event::Message(Box::new(c2d_message::received(m))),
                    Ok(None) => Event::Stop,
                    Err(e) => Event::Lost(e.to_string()),
                },
                s = status.recv(), if status_open => match s {
                    Some(s) => Event::Status(s),
                    None => { status_open = false; Event::Status(ConnectionStatus::Disconnected("closed".into())) }
                },
            }
        });
        match event {
            Event::Stop => break,
            Event::Lost(why) => {
                report(ConnectionStatus::Disconnected(why));
                break;
            }
            Event::Status(s) => report(s),
            Event::Message(m) => {
                if let Some((cb, user_data)) = options.on_message {
                    // SAFETY: the caller's callback; it takes ownership of the message.
                    unsafe { cb(user_data.0, Box::into_raw(m)) };
                }
            }
        }
    }
}

/// Connects a device to its hub, waiting until it is connected (retrying as the retry policy
/// says), and starts receiving its cloud-to-device messages.
///
/// @param connection_string The device connection string,
///        `HostName=...;DeviceId=...;SharedAccessKey=...[;GatewayHostName=...]`, or one with a
///        `SharedAccessSignature=...` (a token that cannot be renewed).
/// @param options Options, or NULL for the defaults (MQTT, system CAs, standard ports). Copied:
///                the caller keeps and frees them.
/// @param out_client Receives the client, owned by the caller (free it with
///                   `c2d_device_client_free`).
/// @retval C2D_RESULT_OK Connected.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the connection string or CA is
///         malformed.
/// @retval C2D_RESULT_UNAUTHORIZED The hub refused the credentials.
/// @retval C2D_RESULT_DEVICE_NOT_FOUND The device is not registered.
/// @retval C2D_RESULT_UNSUPPORTED The connection string is for a module or X.509.
/// @retval C2D_RESULT_UNAVAILABLE The hub could not be reached (after the retries).
/// @retval C2D_RESULT_TIMEOUT Connecting took longer than the timeout.
///
/// Thread safety: callable from any thread. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_client_connect(
    connection_string: *const c_char,
    options: *const c2d_device_options,
    out_client: *mut *mut c2d_device_client,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_client, "out_client")?;
        let cs = text(connection_string, "connection_string")?;
        let default = c2d_device_options::default();
        // SAFETY: NULL means the defaults; otherwise options from c2d_device_options_new.
        let opts = unsafe { options.as_ref() }.unwrap_or(&default);
        let builder = DeviceClient::builder(cs)?.options(opts.options.clone());
        let client = block_on(builder.connect())??;
        let handle = c2d_device_client {
            pushes_messages: opts.on_message.is_some(),
            closed: AtomicBool::new(false),
            callbacks: Mutex::new(None),
            client: client.clone(),
        };
        if opts.on_message.is_some() || opts.on_status.is_some() {
            let copy = Arc::new(c2d_device_options {
                on_message: opts.on_message,
                on_status: opts.on_status,
                ..Default::default()
            });
            let (stop, stop_rx) = watch::channel(false);
            let spawned = std::thread::Builder::new()
                .name("c2d-callbacks".into())
                .spawn(move || callback_loop(client.clone(), copy, stop_rx));
            let thread = match spawned {
                Ok(t) => t,
                Err(e) => {
                    block_on(handle.client.close())?;
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!("cannot start the callback thread: {e}"),
                    ));
                }
            };
            let id = thread.thread().id();
            *handle.callbacks.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Callbacks { thread, id, stop });
        }
        out.write(into_handle(handle));
        Ok(())
    })
}

impl c2d_device_client {
    fn check_open(&self) -> c2d_core::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Closed,
                "the device client was closed",
            ));
        }
        Ok(())
    }

    fn on_callback_thread(&self) -> bool {
        let id = std::thread::current().id();
        self.callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|c| c.id == id)
    }

    /// Stops the callbacks, waiting for a running one to return (unless called from it: the
    /// callback thread then ends after this callback, and a later close or free from another
    /// thread waits for that), then closes the connection after the settlements made.
    fn close(&self) -> c2d_core::Result<()> {
        let first = !self.closed.swap(true, Ordering::SeqCst);
        let callbacks = {
            let mut slot = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = slot.as_ref() {
                let _ = c.stop.send(true);
            }
            let own = slot
                .as_ref()
                .is_some_and(|c| c.id == std::thread::current().id());
            if own {
                None
            } else {
                slot.take()
            }
        };
        if let Some(c) = callbacks {
            let _ = c.thread.join();
        }
        if first {
            block_on(self.client.close())?;
        }
        Ok(())
    }
}

/// Waits up to `timeout_ms` for the next message.
///
/// @param client The client.
/// @param timeout_ms How long to wait, in milliseconds: 0 to only take a message already
///                   there, `C2D_TIMEOUT_INFINITE` to wait as long as it takes.
/// @param out_message Receives the message, owned by the caller: settle it with
///                    `c2d_message_complete` / `_reject` / `_abandon` and free it with
///                    `c2d_message_free`.
/// @retval C2D_RESULT_OK A message was received.
/// @retval C2D_RESULT_TIMEOUT No message came within `timeout_ms`.
/// @retval C2D_RESULT_CLOSED The client was closed.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the client delivers messages to
///         a message callback.
/// @retval C2D_RESULT_UNAUTHORIZED The connection was lost for good: credentials refused
///         (other codes: the retries were exhausted).
///
/// To stop a thread waiting here, close the client from another thread
/// (`c2d_device_client_close`): the wait ends at once with `C2D_RESULT_CLOSED` and takes no
/// message (the messages not received stay queued at the hub). Free the client only once the
/// waiting thread has returned.
///
/// Thread safety: callable from any thread; concurrent receivers each get different messages.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_client_receive(
    client: *const c2d_device_client,
    timeout_ms: u32,
    out_message: *mut *mut c2d_message,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_message, "out_message")?;
        let c = get(client, "client")?;
        c.check_open()?;
        if c.pushes_messages {
            return Err(invalid(
                "this client delivers its messages to its message callback",
            ));
        }
        // a message the client holds already is taken without entering the runtime
        let next = match c.client.try_recv() {
            Some(next) => next,
            None => block_on_for(timeout_ms, "a message", c.client.recv())?,
        };
        match next? {
            Some(m) => {
                out.write(into_handle(c2d_message::received(m)));
                Ok(())
            }
            None => Err(Error::new(
                ErrorKind::Closed,
                "the device client was closed",
            )),
        }
    })
}

/// Reads the client's connection status now.
///
/// @param client The client.
/// @param out_status Receives the status.
/// @retval C2D_RESULT_OK The status was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_client_connection_status(
    client: *const c2d_device_client,
    out_status: *mut c2d_connection_status,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_status, "out_status")?;
        out.write(match get(client, "client")?.client.status().current() {
            ConnectionStatus::Connected => c2d_connection_status::Connected,
            ConnectionStatus::Reconnecting => c2d_connection_status::Reconnecting,
            ConnectionStatus::Disconnected(_) => c2d_connection_status::Disconnected,
        });
        Ok(())
    })
}

/// Reads how many duplicates the client settled without handing them over (with
/// `c2d_device_options_set_suppress_duplicates`; 0 without).
///
/// @param client The client.
/// @param out_count Receives the count.
/// @retval C2D_RESULT_OK The count was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_client_duplicates_suppressed(
    client: *const c2d_device_client,
    out_count: *mut u64,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_count, "out_count")?;
        out.write(get(client, "client")?.client.duplicates_suppressed());
        Ok(())
    })
}

/// Disconnects, after the settlements already made have reached the hub, and stops the
/// callbacks: when it returns, no callback of this client is running (except the one that
/// called it, if it was called from a callback). Messages received and not settled go back to
/// the hub's queue. Later calls on the client fail with `C2D_RESULT_CLOSED`; closing twice is
/// not an error.
///
/// @param client The client.
/// @retval C2D_RESULT_OK Closed.
/// @retval C2D_RESULT_INVALID_ARGUMENT `client` is NULL.
///
/// Thread safety: callable from any thread, including the client's own callbacks. Blocks.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_client_close(client: *const c2d_device_client) -> c2d_result {
    call(|| get(client, "client")?.close())
}

/// Closes the client (as `c2d_device_client_close`) and frees it.
///
/// @param client The client, or NULL (nothing happens, `C2D_RESULT_OK`).
/// @retval C2D_RESULT_OK The client was freed; no callback of it is running or will run.
/// @retval C2D_RESULT_INVALID_ARGUMENT Called from the client's own callback, which cannot
///         free the client it runs for: nothing was freed. Close it there instead, and free it
///         from another thread.
///
/// Thread safety: callable from any thread but the client's callback thread, once, when no
/// other call is using the client.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_device_client_free(client: *mut c2d_device_client) -> c2d_result {
    call(|| {
        if client.is_null() {
            return Ok(());
        }
        if get(client, "client")?.on_callback_thread() {
            return Err(invalid(
                "c2d_device_client_free was called from the client's own callback; \
                 close the client there and free it from another thread",
            ));
        }
        // SAFETY: the client came from c2d_device_client_connect and is freed once.
        let handle = unsafe { from_handle(client) }.expect("checked for NULL above");
        handle.close()
    })
}
