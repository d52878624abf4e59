//! The device client: connect, receive, close; what it is connected with.

use napi::bindgen_prelude::{Either, Object};
use napi::{Env, Result};
use napi_derive::napi;

use c2d::{Error, ErrorKind};

use crate::error::throw;
use crate::message::ReceivedMessage;
use crate::options::ClientOptions;
use crate::retry::RetryPolicy;
use crate::runtime::{abortable, opt_millis, promise, Abort};
use crate::status::{status, Status, StatusChanges};

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
        options: ClientOptions,
        retry: Option<&RetryPolicy>,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let builder = options
            .device(&connection_string, retry)
            .or_else(|e| throw(env, e))?;
        // an aborted connect stops its connection task
        abortable(env, abort, async move {
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
        abort: Option<&Abort>,
    ) -> Result<Either<ReceivedMessage, Object<'env>>> {
        let timeout = opt_millis("timeoutMs", timeout_ms).or_else(|e| throw(env, e))?;
        if let Some(Ok(Some(m))) = self.client.try_recv() {
            return Ok(Either::A(ReceivedMessage::new(m)));
        }
        let client = self.client.clone();
        // an aborted receive takes no message (recv is cancel safe)
        abortable(env, abort, async move {
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

    /// Duplicates settled without being handed over (with `suppressDuplicates`).
    #[napi(getter)]
    pub fn duplicates_suppressed(&self) -> f64 {
        self.client.duplicates_suppressed() as f64
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
