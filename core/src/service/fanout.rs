//! One message to many devices: [`ServiceClient::send_many`] and what it yields.
//!
//! IoT Hub has no multicast for C2D: a fleet gets its command one send per device. A
//! [`SendMany`] keeps up to [`FanOut::in_flight`] sends going on the client's one link,
//! starts them no faster than [`FanOut::rate`], retries throttling and transient errors per
//! device while the others go on (a throttled send slows the pace of all: the hub's throttle
//! is hub-wide), never retries what cannot succeed, and yields each device's result as it
//! comes. It takes the device ids from their iterator only as it needs them, so its memory
//! does not grow with the fleet.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use futures_util::task::AtomicWaker;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::message::{Message, MessageId};
use crate::retry::RetryPolicy;
use crate::service::client::{SentMessage, ServiceClient};
pub use crate::service::tier::{Rate, Tier};

/// How a message gives each device of a fan-out its own id.
pub type MessageIdFn = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// How [`ServiceClient::send_many`] sends: how many at once, how fast, how it retries.
#[derive(Clone)]
pub struct FanOut {
    /// Sends waiting for the hub's answer at most (default 64; at least 1).
    pub in_flight: usize,
    /// How fast sends start (default [`Rate::Unlimited`]). For IoT Hub, its tier and units:
    /// `Tier::S1.units(2)`.
    pub rate: Rate,
    /// The retry policy of each device's send (`None`: the client's).
    pub retry: Option<RetryPolicy>,
    /// Each device's message id, from its device id (`None`: the message's id, `:`, the
    /// device id; or a new UUID for each device when the message has no id).
    pub message_id: Option<MessageIdFn>,
}

impl Default for FanOut {
    fn default() -> Self {
        FanOut {
            in_flight: 64,
            rate: Rate::Unlimited,
            retry: None,
            message_id: None,
        }
    }
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("in_flight", &self.in_flight)
            .field("rate", &self.rate)
            .field("retry", &self.retry)
            .field("message_id", &self.message_id.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl FanOut {
    /// Sets [`in_flight`](Self::in_flight).
    pub fn in_flight(mut self, n: usize) -> Self {
        self.in_flight = n;
        self
    }

    /// Sets [`rate`](Self::rate).
    pub fn rate(mut self, rate: Rate) -> Self {
        self.rate = rate;
        self
    }

    /// Sets [`retry`](Self::retry).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sets [`message_id`](Self::message_id).
    pub fn message_id(mut self, f: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.message_id = Some(Arc::new(f));
        self
    }
}

/// What a fan-out did, so far or in all ([`SendMany::summary`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FanOutSummary {
    /// Devices whose message the hub took.
    pub sent: u64,
    /// Devices whose message it did not take, by error kind (only kinds that occurred, in
    /// [`ErrorKind::ALL`]'s order).
    pub failed: Vec<(ErrorKind, u64)>,
    /// Attempts made again after a throttling or transient error.
    pub retried: u64,
    /// Of the failed attempts, those the hub refused as throttled (retried or not).
    pub throttled: u64,
    /// From the call to the last result (or to now, while it runs).
    pub elapsed: Duration,
    /// The error that ended the run before its last device: the credentials were refused
    /// (`Unauthorized`), the hub's daily quota is used up (`QuotaExceeded`) or the client was
    /// closed (`Closed`). The devices after it were not tried.
    pub stopped: Option<Error>,
    /// Whether [`SendMany::stop`] ended the run before its last device.
    pub cancelled: bool,
}

impl FanOutSummary {
    /// Devices whose message the hub did not take.
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().map(|(_, n)| n).sum()
    }

    /// Devices that failed with `kind`.
    pub fn failed_with(&self, kind: ErrorKind) -> u64 {
        self.failed
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// The pace of a run: when the next attempt may start (the caller's rate, and a pause after
/// a throttling), and how many attempts may be outstanding (`in_flight`, halved by each
/// overload the hub signals and grown back by one per window of successes, as TCP's
/// congestion window: a hub that shapes traffic then stays busy without refusing).
#[derive(Debug)]
struct Pacer {
    /// The time between two starts (`None`: no limit).
    interval: Option<Duration>,
    /// The most attempts outstanding (`FanOut::in_flight`).
    cap: usize,
    state: Mutex<PaceState>,
    /// Signalled when an attempt ends (room may have come free).
    freed: tokio::sync::Notify,
}

#[derive(Debug)]
struct PaceState {
    /// The earliest start of the next attempt.
    next: Instant,
    /// Until when refusals are taken as the same overload (the window halved once).
    settling: Instant,
    /// Attempts outstanding at most now, 1 to `cap`.
    window: f64,
    /// Attempts outstanding.
    active: usize,
}

/// An attempt's place in the window, given back when it is dropped.
struct Permit<'a>(&'a Pacer);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.state.lock().expect("pacer lock").active -= 1;
        self.0.freed.notify_waiters();
    }
}

impl Pacer {
    fn new(interval: Option<Duration>, cap: usize) -> Self {
        Pacer {
            interval,
            cap,
            state: Mutex::new(PaceState {
                next: Instant::now(),
                settling: Instant::now(),
                window: cap as f64,
                active: 0,
            }),
            freed: tokio::sync::Notify::new(),
        }
    }

    /// Waits for room in the window.
    async fn permit(&self) -> Permit<'_> {
        loop {
            // made before the check: an attempt ending in between still wakes this wait
            let freed = self.freed.notified();
            {
                let mut s = self.state.lock().expect("pacer lock");
                if s.active < (s.window as usize).max(1) {
                    s.active += 1;
                    return Permit(self);
                }
            }
            freed.await;
        }
    }

    /// Takes the next start time (`None`: now).
    fn slot(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut s = self.state.lock().expect("pacer lock");
        match self.interval {
            None if s.next <= now => None,
            interval => {
                let slot = s.next.max(now);
                s.next = slot + interval.unwrap_or(Duration::ZERO);
                Some(slot)
            }
        }
    }

    /// The hub throttled an attempt: hold every start for `pause`, and halve the window,
    /// once for the refusals of one overload (those that come within the pause of the
    /// first). Returns the window when it changed.
    fn throttled(&self, pause: Duration) -> Option<usize> {
        let now = Instant::now();
        let mut s = self.state.lock().expect("pacer lock");
        s.next = s.next.max(now + pause);
        if now < s.settling {
            return None;
        }
        s.settling = now + pause;
        s.window = (s.window / 2.0).max(1.0);
        Some(s.window as usize)
    }

    /// An attempt went through: grow the window by one per window of successes.
    fn succeeded(&self) {
        let mut s = self.state.lock().expect("pacer lock");
        s.window = (s.window + 1.0 / s.window).min(self.cap as f64);
    }
}

/// What the sends of a run share.
#[derive(Debug)]
struct Shared {
    pacer: Pacer,
    started: Instant,
    sent: AtomicU64,
    retried: AtomicU64,
    throttled: AtomicU64,
    failed: [AtomicU64; ErrorKind::ALL.len()],
    /// Turns true when the run stops taking devices.
    stop: watch::Sender<bool>,
    cancelled: AtomicBool,
    stopped: Mutex<Option<Error>>,
    /// The task polling the run, woken by a stop (it may wait on the id source alone).
    poller: AtomicWaker,
}

impl Shared {
    fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the run is stopped.
    async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Waits for room in the window and the next start time; `None` when the run stopped
    /// first.
    async fn pace(&self) -> Option<Permit<'_>> {
        if self.is_stopped() {
            return None;
        }
        let permit = tokio::select! {
            permit = self.pacer.permit() => permit,
            () = self.stopped() => return None,
        };
        match self.pacer.slot() {
            None => Some(permit),
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at) => (!self.is_stopped()).then_some(permit),
                () = self.stopped() => None,
            },
        }
    }

    /// Counts a device's result; an error no device can get past ends the run.
    fn record(&self, result: &Result<SentMessage>) {
        match result {
            Ok(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let i = ErrorKind::ALL
                    .iter()
                    .position(|k| *k == e.kind())
                    .expect("every kind is in ALL");
                self.failed[i].fetch_add(1, Ordering::Relaxed);
                // what every later send would meet too
                if matches!(
                    e.kind(),
                    ErrorKind::Unauthorized | ErrorKind::Closed | ErrorKind::QuotaExceeded
                ) {
                    let mut stopped = self.stopped.lock().expect("stop lock");
                    if stopped.is_none() {
                        tracing::warn!(error = %e, "c2d: send_many stopped");
                        *stopped = Some(e.clone());
                    }
                    self.stop.send_replace(true);
                }
            }
        }
    }
}

type DeviceFuture = Pin<Box<dyn Future<Output = Option<(String, Result<SentMessage>)>> + Send>>;

/// A fan-out under way: a [`Stream`] of each device's id and result, in the order they
/// complete. Made by [`ServiceClient::send_many`].
///
/// Sends start only while the stream is polled (a consumer that stops reading stops the
/// run at `in_flight` outstanding). [`stop`](Self::stop) ends it gently: no new send
/// starts, those already sent are awaited and yielded, then the stream ends. Dropping it
/// ends it at once: a send in flight then may or may not have reached the hub.
pub struct SendMany {
    client: ServiceClient,
    message: Arc<Message>,
    /// The ids not taken yet (`None` once they have all been taken).
    devices: Option<Pin<Box<dyn Stream<Item = String> + Send>>>,
    running: FuturesUnordered<DeviceFuture>,
    in_flight: usize,
    retry: RetryPolicy,
    message_id: Option<MessageIdFn>,
    shared: Arc<Shared>,
    finished: Option<Duration>,
}

impl std::fmt::Debug for SendMany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMany")
            .field("running", &self.running.len())
            .field("summary", &self.summary())
            .finish_non_exhaustive()
    }
}

/// Stops a [`SendMany`] from another task ([`SendMany::stopper`]).
#[derive(Debug, Clone)]
pub struct FanOutStopper(Arc<Shared>);

impl FanOutStopper {
    /// Starts no new send; those sent are still awaited and yielded.
    pub fn stop(&self) {
        if !self.0.is_stopped() {
            self.0.cancelled.store(true, Ordering::Relaxed);
            self.0.stop.send_replace(true);
            self.0.poller.wake();
        }
    }
}

impl ServiceClient {
    /// Sends `message` to every device of `devices`, each with its own message id (see
    /// [`FanOut::message_id`]), and yields each device's result as it completes. The
    /// devices are taken from their iterator as sends start, never all at once.
    ///
    /// Per device: throttling (`Throttled`) and transient errors are retried per the
    /// policy, each throttling also slowing the pace of the whole run; an unknown device,
    /// a full queue or a message too large fail at once. `Unauthorized`, `QuotaExceeded` or
    /// `Closed` ends the run ([`FanOutSummary::stopped`]). Fails at once only when `fan` is wrong (a zero
    /// `in_flight`, a rate that is not positive, units a tier does not have).
    pub fn send_many<I>(&self, devices: I, message: Message, fan: FanOut) -> Result<SendMany>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Into<String> + 'static,
    {
        self.send_many_stream(
            futures_util::stream::iter(devices.into_iter().map(Into::into)),
            message,
            fan,
        )
    }

    /// [`send_many`](Self::send_many) to the device ids of a stream (ids that come as the
    /// caller finds them: pages of a registry query, a channel another task fills).
    pub fn send_many_stream<S>(&self, devices: S, message: Message, fan: FanOut) -> Result<SendMany>
    where
        S: Stream<Item = String> + Send + 'static,
    {
        if fan.in_flight == 0 {
            return Err(Error::invalid_argument(
                "a fan-out needs at least one send in flight",
            ));
        }
        let interval = fan.rate.interval()?;
        Ok(SendMany {
            client: self.clone(),
            message: Arc::new(message),
            devices: Some(Box::pin(devices)),
            running: FuturesUnordered::new(),
            in_flight: fan.in_flight,
            retry: fan.retry.unwrap_or_else(|| self.retry_policy().clone()),
            message_id: fan.message_id,
            shared: Arc::new(Shared {
                pacer: Pacer::new(interval, fan.in_flight),
                started: Instant::now(),
                sent: AtomicU64::new(0),
                retried: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
                failed: Default::default(),
                stop: watch::Sender::new(false),
                cancelled: AtomicBool::new(false),
                stopped: Mutex::new(None),
                poller: AtomicWaker::new(),
            }),
            finished: None,
        })
    }
}

impl SendMany {
    /// The next device's id and result; `None` once every device is done (or the run
    /// stopped and its sends in flight are done).
    pub async fn next(&mut self) -> Option<(String, Result<SentMessage>)> {
        StreamExt::next(self).await
    }

    /// Starts no new send; those already sent are awaited and yielded, then the stream
    /// ends, and the summary says `cancelled`.
    pub fn stop(&self) {
        self.stopper().stop();
    }

    /// A handle that stops this run from elsewhere.
    pub fn stopper(&self) -> FanOutStopper {
        FanOutStopper(self.shared.clone())
    }

    /// What the run did so far; final once the stream has ended.
    pub fn summary(&self) -> FanOutSummary {
        let s = &self.shared;
        FanOutSummary {
            sent: s.sent.load(Ordering::Relaxed),
            failed: ErrorKind::ALL
                .iter()
                .zip(&s.failed)
                .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            retried: s.retried.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            elapsed: self.finished.unwrap_or_else(|| s.started.elapsed()),
            stopped: s.stopped.lock().expect("stop lock").clone(),
            cancelled: s.cancelled.load(Ordering::Relaxed),
        }
    }

    /// Sends outstanding now.
    pub fn in_flight(&self) -> usize {
        self.running.len()
    }

    /// The future of one device's send, with its retries.
    fn device(&self, device_id: String) -> DeviceFuture {
        let client = self.client.clone();
        let shared = self.shared.clone();
        let retry = self.retry.clone();
        let mut message = (*self.message).clone();
        message.message_id = Some(MessageId::String(
            match (&self.message_id, &message.message_id) {
                (Some(f), _) => f(&device_id),
                (None, Some(id)) => format!("{id}:{device_id}"),
                (None, None) => uuid::Uuid::new_v4().to_string(),
            },
        ));
        Box::pin(async move {
            let prepared = match client.prepare(&device_id, message) {
                Ok(p) => p,
                Err(e) => return Some((device_id, Err(e))),
            };
            let mut last: Option<Error> = None;
            for attempt in 1.. {
                let Some(permit) = shared.pace().await else {
                    // stopped: a device never tried is not reported
                    return last.map(|e| (device_id, Err(e)));
                };
                let attempt_result = client.send_attempt(&prepared).await;
                drop(permit);
                let e = match attempt_result {
                    Ok(()) => {
                        shared.pacer.succeeded();
                        return Some((device_id, Ok(client.sent(prepared))));
                    }
                    Err(e) => e,
                };
                let throttled = e.kind() == ErrorKind::Throttled;
                if throttled {
                    shared.throttled.fetch_add(1, Ordering::Relaxed);
                }
                let Some(delay) = retry.next_delay(attempt, &e) else {
                    return Some((device_id, Err(e)));
                };
                shared.retried.fetch_add(1, Ordering::Relaxed);
                if throttled {
                    if let Some(window) = shared.pacer.throttled(delay) {
                        tracing::debug!(device = %device_id, window, "c2d: send_many throttled; fewer sends at once");
                    }
                }
                last = Some(e);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.stopped() => {}
                }
            }
            unreachable!("the attempts never run out")
        })
    }
}

impl Stream for SendMany {
    type Item = (String, Result<SentMessage>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.shared.poller.register(cx.waker());
        loop {
            // take ids while there is room; `waiting` when the source has none ready yet
            let mut waiting = false;
            while this.running.len() < this.in_flight && !this.shared.is_stopped() {
                let Some(devices) = this.devices.as_mut() else {
                    break;
                };
                match devices.poll_next_unpin(cx) {
                    Poll::Ready(Some(id)) => {
                        let f = this.device(id);
                        this.running.push(f);
                    }
                    Poll::Ready(None) => this.devices = None,
                    Poll::Pending => {
                        waiting = true;
                        break;
                    }
                }
            }
            match this.running.poll_next_unpin(cx) {
                Poll::Ready(Some(Some((id, result)))) => {
                    this.shared.record(&result);
                    return Poll::Ready(Some((id, result)));
                }
                // a device the stop caught before its first attempt
                Poll::Ready(Some(None)) => continue,
                // nothing in flight, and the source will wake this task
                Poll::Ready(None) if waiting && !this.shared.is_stopped() => return Poll::Pending,
                Poll::Ready(None) => {
                    if this.devices.is_some() && !this.shared.is_stopped() {
                        continue;
                    }
                    this.devices = None;
                    this.finished
                        .get_or_insert_with(|| this.shared.started.elapsed());
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
