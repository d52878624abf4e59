//! The device client: connect, receive, close; what it is connected with.

use futures_util::FutureExt;
use napi::bindgen_prelude::{Buffer, Either, Object};
use napi::{Env, Result};
use napi_derive::napi;

use c2d::{Error, ErrorKind, Transport};

use crate::error::throw;
use crate::message::ReceivedMessage;
use crate::retry::RetryPolicy;
use crate::runtime::{opt_millis, promise};
use crate::status::{status, Status, StatusChanges};

/// The engine's transport of its JavaScript name (`Transport`'s values are the engine's names).
fn transport(name: Option<&str>) -> c2d::Result<Transport> {
    name.unwrap_or("mqtt").parse()
}

/// The PEM of a `trustedCa` (text or Buffer) or `trustedCaFile` option.
pub fn trusted_ca_pem(
    pem: Option<Either<String, Buffer>>,
    file: Option<String>,
) -> c2d::Result<Option<Vec<u8>>> {
    pem_option("trustedCa", pem, file)
}

/// The PEM of a `{name}` (text or Buffer) or `{name}File` option.
fn pem_option(
    name: &str,
    pem: Option<Either<String, Buffer>>,
    file: Option<String>,
) -> c2d::Result<Option<Vec<u8>>> {
    match (pem, file) {
        (Some(_), Some(_)) => Err(Error::invalid_argument(format!(
            "give {name} or {name}File, not both"
        ))),
        (Some(Either::A(text)), None) => Ok(Some(text.into_bytes())),
        (Some(Either::B(bytes)), None) => Ok(Some(bytes.to_vec())),
        (None, Some(path)) => std::fs::read(&path)
            .map(Some)
            .map_err(|e| Error::invalid_argument(format!("reading {name}File {path}: {e}"))),
        (None, None) => Ok(None),
    }
}

/// The options of a device client.
#[napi(object)]
pub struct DeviceClientOptions {
    /// `mqtt` (the default), `mqtt_ws`, `amqp`, `amqp_ws` or `https`.
    pub transport: Option<String>,
    /// PEM of the CA certificates to trust instead of the system's.
    pub trusted_ca: Option<Either<String, Buffer>>,
    /// A file of such PEM.
    pub trusted_ca_file: Option<String>,
    /// The port of the transport chosen.
    pub port: Option<u16>,
    /// The MQTT port.
    pub mqtt_port: Option<u16>,
    /// The AMQP port.
    pub amqp_port: Option<u16>,
    /// The HTTPS (and WebSocket) port.
    pub https_port: Option<u16>,
    /// How long one operation may take, in milliseconds.
    pub timeout_ms: Option<f64>,
    /// How long each SAS token the client makes is valid, in milliseconds.
    pub sas_token_ttl_ms: Option<f64>,
    /// How many messages may be delivered and not yet settled.
    pub in_flight: Option<u16>,
    /// How long an HTTPS client waits between polls once the queue is empty, in milliseconds.
    pub poll_interval_ms: Option<f64>,
    /// The device's X.509 certificate, PEM.
    pub cert: Option<Either<String, Buffer>>,
    /// A file of it.
    pub cert_file: Option<String>,
    /// The certificate's private key, PEM.
    pub key: Option<Either<String, Buffer>>,
    /// A file of it.
    pub key_file: Option<String>,
    /// An HTTP proxy, `http://[user:password@]host:port`.
    pub proxy: Option<String>,
}

fn builder(
    connection_string: &str,
    o: DeviceClientOptions,
    retry: Option<&RetryPolicy>,
) -> c2d::Result<c2d::DeviceClientBuilder> {
    let mut b = c2d::DeviceClient::builder(connection_string)?
        .transport(transport(o.transport.as_deref())?);
    if let Some(pem) = trusted_ca_pem(o.trusted_ca, o.trusted_ca_file)? {
        b = b.trusted_ca_pem(pem);
    }
    for (port, set) in [
        (o.port, c2d::DeviceClientBuilder::port as fn(_, _) -> _),
        (o.mqtt_port, c2d::DeviceClientBuilder::mqtt_port),
        (o.amqp_port, c2d::DeviceClientBuilder::amqp_port),
        (o.https_port, c2d::DeviceClientBuilder::https_port),
    ] {
        if let Some(p) = port {
            b = set(b, p);
        }
    }
    if let Some(r) = retry {
        b = b.retry(r.engine());
    }
    if let Some(t) = opt_millis("timeoutMs", o.timeout_ms)? {
        b = b.timeout(t);
    }
    if let Some(t) = opt_millis("sasTokenTtlMs", o.sas_token_ttl_ms)? {
        b = b.sas_token_ttl(t);
    }
    if let Some(n) = o.in_flight {
        b = b.in_flight(n);
    }
    if let Some(i) = opt_millis("pollIntervalMs", o.poll_interval_ms)? {
        b = b.poll_interval(i);
    }
    match (
        pem_option("cert", o.cert, o.cert_file)?,
        pem_option("key", o.key, o.key_file)?,
    ) {
        (Some(cert), Some(key)) => b = b.client_certificate(cert, key),
        (None, None) => {}
        _ => {
            return Err(Error::invalid_argument(
                "give the device's certificate and its key together (cert and key)",
            ))
        }
    }
    if let Some(url) = o.proxy.as_deref() {
        b = b.proxy(c2d::Proxy::parse(url)?);
    }
    Ok(b)
}

/// A device's connection to its hub.
#[napi]
pub struct DeviceClient {
    client: c2d::DeviceClient,
}

fn closed() -> Error {
    Error::new(ErrorKind::Closed, "the device client was closed")
}

#[napi]
impl DeviceClient {
    /// Connects (retrying as the policy says).
    #[napi(ts_return_type = "Promise<DeviceClient>")]
    pub fn connect<'env>(
        env: &'env Env,
        connection_string: String,
        options: DeviceClientOptions,
        retry: Option<&RetryPolicy>,
    ) -> Result<Object<'env>> {
        let builder = builder(&connection_string, options, retry).or_else(|e| throw(env, e))?;
        promise(env, async move {
            let client = builder.connect().await?;
            Ok(DeviceClient { client })
        })
    }

    /// The next message, waiting at most `timeoutMs` (absent: as long as it takes); `null`
    /// when the time is up. Rejects with `C2D_CLOSED` once the client is closed, and with the
    /// error that ended the connection for good (credentials refused, retries exhausted).
    ///
    /// A message the client has already received is returned at once, without a Promise:
    /// handing each message over through the engine's threads costs two thread wake-ups,
    /// which is what a drain of buffered messages would otherwise spend its time on.
    #[napi(ts_return_type = "ReceivedMessage | Promise<ReceivedMessage | null>")]
    pub fn receive<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Option<f64>,
    ) -> Result<Either<ReceivedMessage, Object<'env>>> {
        let timeout = opt_millis("timeoutMs", timeout_ms).or_else(|e| throw(env, e))?;
        // polled once here; dropped if not ready, which takes nothing (recv is cancel-safe)
        if let Some(Ok(Some(m))) = self.client.recv().now_or_never() {
            return Ok(Either::A(ReceivedMessage::new(m)));
        }
        let client = self.client.clone();
        promise(env, async move {
            let next = match timeout {
                Some(t) => match tokio::time::timeout(t, client.recv()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(None),
                },
                None => client.recv().await,
            };
            match next? {
                Some(m) => Ok(Some(ReceivedMessage::new(m))),
                None => Err(closed()),
            }
        })
        .map(Either::B)
    }

    /// Disconnects, after the settlements already made have reached the hub. Messages not
    /// settled go back to the hub's queue. Closing twice does nothing.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let client = self.client.clone();
        promise(env, async move {
            client.close().await;
            Ok(())
        })
    }

    /// The transport, as its name (`amqp`).
    #[napi(getter)]
    pub fn transport(&self) -> &'static str {
        self.client.transport().as_str()
    }

    /// The connection's status now.
    #[napi(getter)]
    pub fn status(&self) -> Status {
        status(self.client.status().current())
    }

    /// The status changes from now on.
    #[napi]
    pub fn status_changes(&self) -> StatusChanges {
        StatusChanges::new(self.client.status())
    }
}

impl Drop for DeviceClient {
    /// A client collected without `close()` is closed in the background.
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = c2d::runtime::spawn(async move { client.close().await });
    }
}
