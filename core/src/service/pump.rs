//! The feedback pump: one task per service client that reads the hub's feedback queue
//! (`/messages/serviceBound/feedback`) for the client's lifetime, reconnecting as the client's
//! retry policy says, and hands each record to the `outcome()` calls waiting for it, a cache of
//! recent records and every `feedback()` subscriber.
//!
//! May import the AMQP session, errors, retry and the feedback format; it reaches the client's
//! connection only through [`FeedbackSource`], so the client imports it and not the reverse.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use fe2o3_amqp::types::messaging::message::Body;
use fe2o3_amqp::types::primitives::Value;
use fe2o3_amqp::Receiver;
use tokio::sync::{broadcast, oneshot, Notify};

use crate::amqp::session::AmqpSession;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::RetryPolicy;
use crate::service::feedback::{decode_batch, FeedbackRecord};

/// How long [`Feedback::stop`] waits for the pump to settle the feedback message it holds.
const PUMP_STOP: Duration = Duration::from_secs(2);
/// Records kept for `outcome()` calls that come after their record arrived.
const RECENT_RECORDS: usize = 10_000;
/// Records a slow `feedback()` subscriber may fall behind by before it misses some.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// What the pump needs of the client: its feedback state and an authorized connection.
pub(super) trait FeedbackSource: Send + Sync + 'static {
    /// The client's feedback state.
    fn feedback(&self) -> &Feedback;
    /// False once the client is closed: the pump stops.
    fn is_open(&self) -> bool;
    /// The client's retry policy, for reconnecting.
    fn retry(&self) -> &RetryPolicy;
    /// How long each token lives; the pump renews it at three quarters of that.
    fn token_ttl(&self) -> Duration;
    /// A new AMQP connection to the hub.
    fn open_session(&self) -> impl Future<Output = Result<AmqpSession>> + Send;
    /// Puts a fresh token on `amqp` (CBS); returns when it expires.
    fn authorize<'a>(
        &'a self,
        amqp: &'a mut AmqpSession,
    ) -> impl Future<Output = Result<SystemTime>> + Send + 'a;
}

/// A client's feedback state: who waits for which record, the recent records, the
/// subscribers and the pump.
#[derive(Default)]
pub(super) struct Feedback {
    /// Waiters of `outcome()`, by message id.
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<FeedbackRecord>>>>,
    /// Records that arrived recently, for `outcome()` calls that come after them.
    recent: Mutex<(HashMap<String, FeedbackRecord>, VecDeque<String>)>,
    /// Every record, to each `feedback()` subscriber.
    stream: Mutex<Option<broadcast::Sender<FeedbackRecord>>>,
    /// The pump task, once started.
    pump: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Asks the pump to stop between two feedback messages, so that a message whose records
    /// it has handed out is also settled (else the hub gives the batch to the next reader).
    stop: Arc<Notify>,
}

/// A message's own record: already here, or to be waited for.
pub(super) enum Awaited {
    /// The record arrived before the wait began.
    Arrived(FeedbackRecord),
    /// The record is sent here when it arrives; the sender is dropped when the client closes.
    Pending(oneshot::Receiver<FeedbackRecord>),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Feedback {
    /// Every record from now on.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<FeedbackRecord> {
        lock(&self.stream)
            .get_or_insert_with(|| broadcast::channel(SUBSCRIBER_BACKLOG).0)
            .subscribe()
    }

    /// The record of the message `message_id`: a recent one, or a place to wait for it.
    pub(super) fn await_record(&self, message_id: &str) -> Awaited {
        // the waiters' lock is held while the cache is read, so that a record dispatched in
        // between reaches one or the other
        let mut waiters = lock(&self.waiters);
        if let Some(r) = lock(&self.recent).0.get(message_id) {
            return Awaited::Arrived(r.clone());
        }
        let (tx, rx) = oneshot::channel();
        let waiting = waiters.entry(message_id.to_string()).or_default();
        // the waits that were cancelled (their receivers dropped) leave with this one
        waiting.retain(|w| !w.is_closed());
        waiting.push(tx);
        Awaited::Pending(rx)
    }

    /// Starts the pump, once, reading for `source` as long as it lives and is open.
    pub(super) fn start<S: FeedbackSource>(&self, source: Weak<S>) -> Result<()> {
        let mut pump = lock(&self.pump);
        if pump.is_none() {
            *pump = Some(crate::runtime::spawn(run(source, self.stop.clone()))?);
        }
        Ok(())
    }

    /// Stops the pump (after it settles the feedback message in hand, or after a short wait
    /// for one stuck on a dead connection) and ends every wait and subscription.
    pub(super) async fn stop(&self) {
        let pump = lock(&self.pump).take();
        if let Some(mut p) = pump {
            self.stop.notify_one();
            if tokio::time::timeout(PUMP_STOP, &mut p).await.is_err() {
                p.abort();
            }
        }
        lock(&self.waiters).clear();
        lock(&self.stream).take();
    }

    /// Hands a record to its waiters, the recent cache and the subscribers.
    fn dispatch(&self, record: FeedbackRecord) {
        let waiters = {
            // cached under the waiters' lock, as `await_record` reads it: a wait that begins
            // now finds the record in one or the other
            let mut waiters = lock(&self.waiters);
            let mut recent = lock(&self.recent);
            let (map, order) = &mut *recent;
            if map
                .insert(record.original_message_id.clone(), record.clone())
                .is_none()
            {
                order.push_back(record.original_message_id.clone());
            }
            while order.len() > RECENT_RECORDS {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
            waiters.remove(&record.original_message_id)
        };
        for w in waiters.into_iter().flatten() {
            let _ = w.send(record.clone());
        }
        if let Some(tx) = lock(&self.stream).as_ref() {
            let _ = tx.send(record);
        }
    }
}

/// A connection with the feedback link attached, and when its token expires.
async fn attach<S: FeedbackSource>(source: &S) -> Result<(AmqpSession, Receiver, SystemTime)> {
    let mut amqp = source.open_session().await?;
    let expiry = source.authorize(&mut amqp).await?;
    let receiver = Receiver::attach(
        &mut amqp.session,
        format!("c2d-feedback-{}", uuid::Uuid::new_v4()),
        "/messages/serviceBound/feedback",
    )
    .await
    .map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("attaching the feedback link: {e:?}"),
        )
    })?;
    Ok((amqp, receiver, expiry))
}

/// The pump: reads the feedback queue for the client's lifetime, reconnecting as needed.
/// It holds the client weakly, so that dropping every clone of it ends the pump.
async fn run<S: FeedbackSource>(source: Weak<S>, stop: Arc<Notify>) {
    let mut attempt = 0u32;
    loop {
        let Some(strong) = source.upgrade() else {
            return;
        };
        if !strong.is_open() {
            return;
        }
        let (mut amqp, mut receiver, mut expiry) = match attach(&*strong).await {
            Ok(x) => x,
            Err(e) => {
                attempt += 1;
                let delay = strong.retry().next_delay(attempt, &e);
                drop(strong);
                match delay {
                    Some(d) => {
                        tokio::select! {
                            _ = tokio::time::sleep(d) => continue,
                            _ = stop.notified() => return,
                        }
                    }
                    None => {
                        tracing::warn!(error = %e, "c2d: the feedback pump stopped");
                        return;
                    }
                }
            }
        };
        attempt = 0;
        let token_ttl = strong.token_ttl();
        drop(strong);
        loop {
            let renew_at = expiry - token_ttl / 4;
            let wait = renew_at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                d = receiver.recv::<Body<Value>>() => {
                    let Some(strong) = source.upgrade() else { return };
                    let delivery = match d {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::debug!(error = ?e, "c2d: feedback link lost; reconnecting");
                            break;
                        }
                    };
                    let body: Vec<u8> = match delivery.body() {
                        Body::Data(d) => d.iter().flat_map(|x| x.0.iter().copied()).collect(),
                        _ => Vec::new(),
                    };
                    match decode_batch(&body) {
                        Ok(records) => {
                            for r in records {
                                strong.feedback().dispatch(r);
                            }
                            let _ = receiver.accept(&delivery).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "c2d: undecodable feedback message rejected");
                            let _ = receiver.reject(&delivery, None).await;
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    let Some(strong) = source.upgrade() else { return };
                    match strong.authorize(&mut amqp).await {
                        Ok(e) => expiry = e,
                        Err(_) => break,
                    }
                }
                _ = stop.notified() => {
                    let _ = receiver.close().await;
                    amqp.close().await;
                    return;
                }
            }
        }
        let _ = receiver.close().await;
        amqp.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::feedback::FeedbackStatus;

    fn record(id: &str) -> FeedbackRecord {
        FeedbackRecord::new(id, "dev", "0", SystemTime::now(), FeedbackStatus::Success)
    }

    #[test]
    fn a_record_reaches_its_waiter_the_cache_and_every_subscriber() {
        let feedback = Feedback::default();
        let mut early = feedback.subscribe();
        let Awaited::Pending(mut waiter) = feedback.await_record("m1") else {
            panic!("no record has arrived yet");
        };
        feedback.dispatch(record("m1"));
        assert_eq!(waiter.try_recv().unwrap().original_message_id, "m1");
        assert_eq!(early.try_recv().unwrap().original_message_id, "m1");
        // a wait that begins after the record arrived finds it at once
        let Awaited::Arrived(r) = feedback.await_record("m1") else {
            panic!("the record is cached");
        };
        assert_eq!(r.original_message_id, "m1");
        // another message's wait is not answered by it
        let Awaited::Pending(mut other) = feedback.await_record("m2") else {
            panic!("m2 has no record");
        };
        assert!(other.try_recv().is_err());
    }

    #[test]
    fn the_cache_keeps_the_newest_records() {
        let feedback = Feedback::default();
        for i in 0..=RECENT_RECORDS {
            feedback.dispatch(record(&i.to_string()));
        }
        assert!(matches!(feedback.await_record("0"), Awaited::Pending(_)));
        let newest = RECENT_RECORDS.to_string();
        assert!(matches!(
            feedback.await_record(&newest),
            Awaited::Arrived(_)
        ));
    }
}
