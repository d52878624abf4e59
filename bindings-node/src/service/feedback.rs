//! Feedback records, and the stream of every record a service client reads.

use napi::bindgen_prelude::Object;
use napi::{Env, Result};
use napi_derive::napi;

use crate::runtime::{abortable, epoch_millis, Abort};

/// A message's outcome, as the hub reported it.
#[napi(object)]
pub struct FeedbackRecord {
    /// The id of the message this is the outcome of.
    pub original_message_id: String,
    /// The device it was sent to.
    pub device_id: String,
    /// That device's generation id.
    pub device_generation_id: String,
    /// When the outcome happened, in milliseconds since the Unix epoch.
    pub enqueued_time_ms: f64,
    /// `Success`, `Expired`, `DeliveryCountExceeded`, `Rejected` or `Purged`.
    pub status: String,
    /// The hub's description of it.
    pub description: String,
}

/// The JavaScript form of a record.
pub fn record(r: c2d::FeedbackRecord) -> FeedbackRecord {
    FeedbackRecord {
        original_message_id: r.original_message_id,
        device_id: r.device_id,
        device_generation_id: r.device_generation_id,
        enqueued_time_ms: epoch_millis(r.enqueued_time),
        status: r.status.as_str().into(),
        description: r.description,
    }
}

/// Every feedback record a service client reads from the moment this was made.
#[napi]
pub struct FeedbackReceiver {
    pub(crate) receiver: c2d::FeedbackReceiver,
}

#[napi]
impl FeedbackReceiver {
    /// The next record; `null` once the client is closed.
    #[napi(ts_return_type = "Promise<FeedbackRecord | null>")]
    pub fn next<'env>(&self, env: &'env Env, abort: Option<&Abort>) -> Result<Object<'env>> {
        let receiver = self.receiver.clone();
        // an aborted wait takes no record (recv is cancel safe)
        abortable(
            env,
            abort,
            async move { Ok(receiver.recv().await.map(record)) },
        )
    }
}
