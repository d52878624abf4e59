//! The service client: send, each message's own outcome, feedback, purge, the registry.

use napi::bindgen_prelude::{Buffer, Either, Object};
use napi::{Env, Result};
use napi_derive::napi;

use c2d::{Error, ServiceTransport};

use crate::device::trusted_ca_pem;
use crate::error::throw;
use crate::message::{outgoing, OutgoingMessage};
use crate::retry::RetryPolicy;
use crate::runtime::{opt_millis, promise};
use crate::service::feedback::{record, FeedbackReceiver};
use crate::service::registry::Registry;
use crate::status::{status, Status, StatusChanges};

fn transport(name: Option<&str>) -> c2d::Result<ServiceTransport> {
    match name.unwrap_or("amqp") {
        "amqp" => Ok(ServiceTransport::Amqp),
        "amqp_ws" => Ok(ServiceTransport::AmqpWs),
        other => Err(Error::invalid_argument(format!(
            "a service client's transport is amqp or amqp_ws, not {other:?}"
        ))),
    }
}

/// The options of a service client.
#[napi(object)]
pub struct ServiceClientOptions {
    /// `amqp` (the default) or `amqp_ws`.
    pub transport: Option<String>,
    /// PEM of the CA certificates to trust instead of the system's.
    pub trusted_ca: Option<Either<String, Buffer>>,
    /// A file of such PEM.
    pub trusted_ca_file: Option<String>,
    /// The port of the transport chosen.
    pub port: Option<u16>,
    /// The AMQP port.
    pub amqp_port: Option<u16>,
    /// The HTTPS (registry, purge, WebSocket) port.
    pub https_port: Option<u16>,
    /// How long one operation may take, in milliseconds.
    pub timeout_ms: Option<f64>,
    /// How long each SAS token the client makes is valid, in milliseconds.
    pub sas_token_ttl_ms: Option<f64>,
    /// An HTTP proxy, `http://[user:password@]host:port`.
    pub proxy: Option<String>,
}

fn builder(
    connection_string: &str,
    o: ServiceClientOptions,
    retry: Option<&RetryPolicy>,
) -> c2d::Result<c2d::ServiceClientBuilder> {
    let mut b = c2d::ServiceClient::builder(connection_string)?
        .transport(transport(o.transport.as_deref())?);
    if let Some(pem) = trusted_ca_pem(o.trusted_ca, o.trusted_ca_file)? {
        b = b.trusted_ca_pem(pem);
    }
    for (port, set) in [
        (o.port, c2d::ServiceClientBuilder::port as fn(_, _) -> _),
        (o.amqp_port, c2d::ServiceClientBuilder::amqp_port),
        (o.https_port, c2d::ServiceClientBuilder::https_port),
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
    if let Some(url) = o.proxy.as_deref() {
        b = b.proxy(c2d::Proxy::parse(url)?);
    }
    Ok(b)
}

/// A back end's connection to its hub.
#[napi]
pub struct ServiceClient {
    client: c2d::ServiceClient,
}

/// A message the hub accepted, whose outcome can be waited for.
#[napi]
pub struct SentMessage {
    sent: c2d::SentMessage,
}

#[napi]
impl SentMessage {
    /// The message's id (generated when the message had none).
    #[napi(getter)]
    pub fn message_id(&self) -> String {
        self.sent.message_id().to_string()
    }

    /// This message's own feedback record, waiting at most `timeoutMs` (absent: as long as
    /// it takes); rejects with `C2D_TIMEOUT` when the time is up.
    #[napi(ts_return_type = "Promise<FeedbackRecord>")]
    pub fn outcome<'env>(&self, env: &'env Env, timeout_ms: Option<f64>) -> Result<Object<'env>> {
        let limit = opt_millis("timeoutMs", timeout_ms).or_else(|e| throw(env, e))?;
        let sent = self.sent.clone();
        promise(env, async move {
            match limit {
                Some(l) => match tokio::time::timeout(l, sent.outcome()).await {
                    Ok(r) => r.map(record),
                    Err(_) => Err(Error::new(
                        c2d::ErrorKind::Timeout,
                        format!(
                            "no feedback for message {} within {} ms",
                            sent.message_id(),
                            timeout_ms.unwrap_or_default()
                        ),
                    )),
                },
                None => sent.outcome().await.map(record),
            }
        })
    }
}

#[napi]
impl ServiceClient {
    /// Connects (retrying as the policy says).
    #[napi(ts_return_type = "Promise<ServiceClient>")]
    pub fn connect<'env>(
        env: &'env Env,
        connection_string: String,
        options: ServiceClientOptions,
        retry: Option<&RetryPolicy>,
    ) -> Result<Object<'env>> {
        let builder = builder(&connection_string, options, retry).or_else(|e| throw(env, e))?;
        promise(env, async move {
            let client = builder.connect().await?;
            Ok(ServiceClient { client })
        })
    }

    /// Sends a message to a device; resolves once the hub has accepted it.
    #[napi(ts_return_type = "Promise<SentMessage>")]
    pub fn send<'env>(
        &self,
        env: &'env Env,
        device_id: String,
        message: OutgoingMessage,
    ) -> Result<Object<'env>> {
        let m = outgoing(message).or_else(|e| throw(env, e))?;
        let client = self.client.clone();
        promise(env, async move {
            let sent = client.send(&device_id, m).await?;
            Ok(SentMessage { sent })
        })
    }

    /// Every feedback record from now on.
    #[napi]
    pub fn feedback(&self, env: &Env) -> Result<FeedbackReceiver> {
        match self.client.feedback() {
            Ok(r) => Ok(FeedbackReceiver::new(r)),
            Err(e) => throw(env, e),
        }
    }

    /// Removes every message queued for a device; resolves to how many.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn purge<'env>(&self, env: &'env Env, device_id: String) -> Result<Object<'env>> {
        let client = self.client.clone();
        promise(env, async move {
            let r = client.purge(&device_id).await?;
            Ok(r.total_messages_purged as f64)
        })
    }

    /// The registry of the client's hub.
    #[napi(getter)]
    pub fn registry(&self) -> Registry {
        Registry::new(self.client.registry().clone())
    }

    /// Closes the connection; waiting calls end with `C2D_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let client = self.client.clone();
        promise(env, async move {
            client.close().await;
            Ok(())
        })
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

impl Drop for ServiceClient {
    /// A client collected without `close()` is closed in the background.
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = c2d::runtime::spawn(async move { client.close().await });
    }
}
