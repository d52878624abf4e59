//! The service client: send, each message's own outcome, feedback, purge, the registry.

use napi::bindgen_prelude::Object;
use napi::{Env, Result};
use napi_derive::napi;

use c2d::Error;

use crate::error::throw;
use crate::message::{outgoing, OutgoingMessage};
use crate::options::ClientOptions;
use crate::retry::RetryPolicy;
use crate::runtime::{abortable, opt_millis, promise, Abort};
use crate::service::feedback::{record, FeedbackReceiver};
use crate::service::registry::Registry;
use crate::status::{status, Status, StatusChanges};

/// A back end's connection to its hub.
#[napi]
pub struct ServiceClient {
    client: c2d::ServiceClient,
}

/// A message the hub accepted, whose outcome can be waited for.
#[napi]
pub struct SentMessage {
    pub(crate) sent: c2d::SentMessage,
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
    pub fn outcome<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Option<f64>,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let limit = opt_millis("timeoutMs", timeout_ms).or_else(|e| throw(env, e))?;
        let sent = self.sent.clone();
        // an aborted wait leaves the record to a later call (outcome is cancel safe)
        abortable(env, abort, async move {
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
        options: ClientOptions,
        retry: Option<&RetryPolicy>,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let builder = options
            .service(&connection_string, retry)
            .or_else(|e| throw(env, e))?;
        abortable(env, abort, async move {
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
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let m = outgoing(message).or_else(|e| throw(env, e))?;
        let client = self.client.clone();
        // an aborted send may have reached the hub, as one that times out
        abortable(env, abort, async move {
            let sent = client.send(&device_id, m).await?;
            Ok(SentMessage { sent })
        })
    }

    /// Sends `message` to the devices `index.ts` feeds the run (see `sendMany` there).
    /// `rate` (sends a second) and `tier` (`F1`, `S1`, `S2`, `S3`, with `units`) exclude
    /// each other; `retry` is the client's policy when absent.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn send_many(
        &self,
        env: &Env,
        message: OutgoingMessage,
        in_flight: u32,
        rate: Option<f64>,
        tier: Option<String>,
        units: Option<u32>,
        retry: Option<&RetryPolicy>,
    ) -> Result<crate::service::fanout::SendMany> {
        let start = || -> c2d::Result<crate::service::fanout::SendMany> {
            let rate = c2d::Rate::from_options(rate, tier.as_deref(), units)?;
            let mut fan = c2d::FanOut::default()
                .in_flight(in_flight as usize)
                .rate(rate);
            if let Some(r) = retry {
                fan = fan.retry(r.policy.clone());
            }
            crate::service::fanout::SendMany::start(&self.client, outgoing(message)?, fan)
        };
        start().or_else(|e| throw(env, e))
    }

    /// Every feedback record from now on.
    #[napi]
    pub fn feedback(&self, env: &Env) -> Result<FeedbackReceiver> {
        match self.client.feedback() {
            Ok(receiver) => Ok(FeedbackReceiver { receiver }),
            Err(e) => throw(env, e),
        }
    }

    /// Removes every message queued for a device; resolves to how many.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn purge<'env>(
        &self,
        env: &'env Env,
        device_id: String,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let client = self.client.clone();
        abortable(env, abort, async move {
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
