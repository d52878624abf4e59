//! One message to many devices: the engine's `send_many`, fed device ids by `index.ts` in
//! chunks (as it takes them from the caller's iterable, a bounded channel between) and read
//! in batches of results (one promise for every batch ready together).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{FutureExt, StreamExt};
use napi::bindgen_prelude::Object;
use napi::{Env, Result};
use napi_derive::napi;
use tokio::sync::mpsc;

use crate::runtime::{abortable, promise, Abort};
use crate::service::client::SentMessage;

/// Chunks of ids the channel holds before `feed` waits.
const CHUNKS: usize = 4;

/// One device's result: `sent`, or the error's code and message.
#[napi(object, object_from_js = false)]
pub struct SendItem {
    /// The device.
    pub device_id: String,
    /// The message the hub took.
    pub sent: Option<SentMessage>,
    /// Why it did not (`C2D_DEVICE_NOT_FOUND`, …).
    pub error_code: Option<String>,
    /// The error's message.
    pub error_message: Option<String>,
}

/// Results ready together, and whether the run has ended.
#[napi(object, object_from_js = false)]
pub struct SendBatch {
    /// The results.
    pub items: Vec<SendItem>,
    /// True once every result has been given.
    pub done: bool,
}

/// What a run did ([`c2d::FanOutSummary`]).
#[napi(object)]
pub struct FanOutSummary {
    /// Devices whose message the hub took.
    pub sent: f64,
    /// Devices it did not take, by error code.
    pub failed: HashMap<String, f64>,
    /// Attempts made again after a throttling or transient error.
    pub retried: f64,
    /// Attempts the hub refused as throttled.
    pub throttled: f64,
    /// Milliseconds from the call to the last result (or to now).
    pub elapsed_ms: f64,
    /// The code of the error that ended the run early, if one did.
    pub stopped_code: Option<String>,
    /// Its message.
    pub stopped_message: Option<String>,
    /// Whether `stop()` ended the run early.
    pub cancelled: bool,
}

fn summary(s: &c2d::FanOutSummary) -> FanOutSummary {
    FanOutSummary {
        sent: s.sent as f64,
        failed: s
            .failed
            .iter()
            .map(|(k, n)| (k.code().to_string(), *n as f64))
            .collect(),
        retried: s.retried as f64,
        throttled: s.throttled as f64,
        elapsed_ms: s.elapsed.as_secs_f64() * 1000.0,
        stopped_code: s.stopped.as_ref().map(|e| e.kind().code().to_string()),
        stopped_message: s.stopped.as_ref().map(|e| e.message().to_string()),
        cancelled: s.cancelled,
    }
}

fn item((device_id, result): (String, c2d::Result<c2d::SentMessage>)) -> SendItem {
    match result {
        Ok(sent) => SendItem {
            device_id,
            sent: Some(SentMessage { sent }),
            error_code: None,
            error_message: None,
        },
        Err(e) => SendItem {
            device_id,
            sent: None,
            error_code: Some(e.kind().code().to_string()),
            error_message: Some(e.message().to_string()),
        },
    }
}

/// A fan-out under way.
#[napi]
pub struct SendMany {
    run: Arc<tokio::sync::Mutex<c2d::SendMany>>,
    ids: Mutex<Option<mpsc::Sender<Vec<String>>>>,
    stopper: c2d::FanOutStopper,
    summary: Arc<Mutex<c2d::FanOutSummary>>,
    /// True once the run takes no more ids (stopped or ended): a waiting `feed` returns.
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl SendMany {
    /// Starts a run whose ids come through [`feed`](Self::feed).
    pub fn start(
        client: &c2d::ServiceClient,
        message: c2d::Message,
        fan: c2d::FanOut,
    ) -> c2d::Result<SendMany> {
        let (tx, rx) = mpsc::channel::<Vec<String>>(CHUNKS);
        let ids = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (futures_util::stream::iter(chunk), rx))
        })
        .flatten();
        let run = client.send_many_stream(ids, message, fan)?;
        Ok(SendMany {
            stopper: run.stopper(),
            summary: Arc::new(Mutex::new(run.summary())),
            run: Arc::new(tokio::sync::Mutex::new(run)),
            ids: Mutex::new(Some(tx)),
            closed: Arc::new(tokio::sync::watch::Sender::new(false)),
        })
    }
}

#[napi]
impl SendMany {
    /// Gives the run more device ids; resolves once it has room for them (false when the
    /// run takes no more: it stopped).
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn feed<'env>(&self, env: &'env Env, ids: Vec<String>) -> Result<Object<'env>> {
        let tx = self.ids.lock().expect("ids lock").clone();
        let mut closed = self.closed.subscribe();
        promise(env, async move {
            let Some(tx) = tx else { return Ok(false) };
            Ok(tokio::select! {
                sent = tx.send(ids) => sent.is_ok(),
                _ = closed.wait_for(|c| *c) => false,
            })
        })
    }

    /// No more ids: the run ends once those given are done.
    #[napi]
    pub fn end_ids(&self) {
        self.ids.lock().expect("ids lock").take();
    }

    /// Up to `max` results: waits for the first, takes the others that are ready.
    #[napi(ts_return_type = "Promise<SendBatch>")]
    pub fn next_batch<'env>(
        &self,
        env: &'env Env,
        max: u32,
        abort: Option<&Abort>,
    ) -> Result<Object<'env>> {
        let (run, summary_slot) = (self.run.clone(), self.summary.clone());
        let closed = self.closed.clone();
        // aborted, the wait takes nothing (the run's next is cancel safe)
        abortable(env, abort, async move {
            let mut run = run.lock().await;
            let mut items = Vec::new();
            let mut done = false;
            match run.next().await {
                Some(r) => items.push(item(r)),
                None => done = true,
            }
            while !done && items.len() < max.max(1) as usize {
                match run.next().now_or_never() {
                    Some(Some(r)) => items.push(item(r)),
                    Some(None) => done = true,
                    None => break,
                }
            }
            *summary_slot.lock().expect("summary lock") = run.summary();
            if done {
                closed.send_replace(true);
            }
            Ok(SendBatch { items, done })
        })
    }

    /// Starts no new send; those in flight are still reported, then the run ends.
    #[napi]
    pub fn stop(&self) {
        self.stopper.stop();
        self.ids.lock().expect("ids lock").take();
        self.closed.send_replace(true);
    }

    /// What the run did so far (final once it has ended).
    #[napi(getter)]
    pub fn summary(&self) -> FanOutSummary {
        // the run's own when no batch holds it, else the one the last batch left
        match self.run.try_lock() {
            Ok(run) => summary(&run.summary()),
            Err(_) => summary(&self.summary.lock().expect("summary lock")),
        }
    }
}
