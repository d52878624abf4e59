//! The state machine: one queue per device with IoT Hub's rules, the hub-wide feedback queue,
//! the registry and the counters (docs/hub.md, "Queue rules").
//!
//! [`HubState`] is pure: every operation takes the current time and mutates memory, and
//! records what it changed in a journal that the store writes to SQLite in the same commit.
//! Nothing here uses tokio or does I/O; the modules below import only each other and `c2d`.

pub mod feedback;
pub mod journal;
pub mod limits;
pub mod lock;
pub mod registry;
pub mod stats;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use c2d::{FeedbackRecord, FeedbackStatus, Message};
use uuid::Uuid;

use feedback::FeedbackQueue;
pub use journal::{Dirty, Wakeup};
use limits::Limits;
pub use lock::{Lock, LockLost, Settlement};
use registry::{Registry, RegistryError};
use stats::{DeadLetter, Stats};

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Waiting to be delivered.
    Enqueued,
    /// Delivered and locked, waiting for complete, reject or abandon.
    Invisible,
}

/// A message in a device's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    /// Hub-wide sequence number (FIFO order).
    pub seq: u64,
    /// The device.
    pub device_id: String,
    /// The message as the service sent it.
    pub message: Message,
    /// Enqueued or Invisible.
    pub state: MessageState,
    /// Abandons so far.
    pub delivery_count: u32,
    /// The lock, while Invisible.
    pub lock: Option<Lock>,
    /// When the hub accepted it.
    pub enqueued: SystemTime,
    /// When it expires.
    pub expires: SystemTime,
}

/// A message handed to a device.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Sequence number.
    pub seq: u64,
    /// The lock token to settle it with.
    pub lock_token: Uuid,
    /// When the lock ends (the hub's clock): the message is then queued again.
    pub lock_expires: SystemTime,
    /// The message.
    pub message: Message,
    /// Abandons before this delivery.
    pub delivery_count: u32,
    /// When the hub accepted it.
    pub enqueued: SystemTime,
    /// When it expires.
    pub expires: SystemTime,
}

/// Why a send was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The device is not registered (404001).
    #[error("device '{0}' is not registered")]
    DeviceNotFound(String),
    /// The queue is full (403004).
    #[error("C2D messages enqueued for device '{device}' exceeded the queue limit of {limit}")]
    QueueFull {
        /// The device.
        device: String,
        /// The limit.
        limit: usize,
    },
    /// The message is too large (413001).
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// The whole mutable state of the hub.
#[derive(Debug)]
pub struct HubState {
    /// The rules.
    pub limits: Limits,
    /// Devices and policies.
    pub registry: Registry,
    pub(crate) queues: HashMap<String, BTreeMap<u64, QueuedMessage>>,
    locks: HashMap<Uuid, (String, u64)>,
    /// The feedback queue.
    pub feedback: FeedbackQueue,
    pub(crate) next_seq: u64,
    /// Rows changed since the store last drained it.
    pub journal: Vec<Dirty>,
    /// Waiters to wake after the next commit.
    pub wakeups: HashSet<Wakeup>,
    /// What the hub has done since it started (memory only).
    pub stats: Stats,
    /// Acknowledgements still to lose, by device (a fault asked for them): the device's next
    /// settles change nothing, as if they never reached the hub (memory only).
    pub lost_acks: HashMap<String, u32>,
    /// How many acknowledgements were lost that way.
    pub acks_lost: u64,
    /// Messages whose sender waits for its answer and that are neither on disk nor gone:
    /// the store answers each once its row is committed, or once it has gone
    /// ([`answerable`](Self::answerable)).
    pub unanswered: HashSet<u64>,
    /// Sends that may be answered now, without waiting for a commit: their message was
    /// settled (or expired, or purged) before its row was written, and nothing of its end
    /// has to be kept (no feedback record).
    pub answerable: Vec<u64>,
    /// No later than the earliest deadline of a queued message (its expiry, its lock's
    /// end), so that the time rules' task does not scan every message four times a second:
    /// lowered by each new deadline, made exact by each sweep, computed by a scan only when
    /// unknown.
    deadline_hint: std::cell::Cell<DeadlineHint>,
}

/// What [`HubState`] knows of its queues' next deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeadlineHint {
    /// Not known: the next look scans the queues.
    Unknown,
    /// No deadline is earlier than this (`None`: no message has one).
    Bound(Option<SystemTime>),
}

/// When the time rules next change a message: its expiry, or its lock's end if sooner.
fn deadline(m: &QueuedMessage) -> SystemTime {
    match &m.lock {
        Some(l) => l.expires.min(m.expires),
        None => m.expires,
    }
}

impl HubState {
    /// An empty hub.
    pub fn new(limits: Limits) -> Self {
        HubState {
            limits,
            registry: Registry::default(),
            queues: HashMap::new(),
            locks: HashMap::new(),
            feedback: FeedbackQueue::default(),
            next_seq: 1,
            journal: Vec::new(),
            wakeups: HashSet::new(),
            stats: Stats::default(),
            lost_acks: HashMap::new(),
            acks_lost: 0,
            unanswered: HashSet::new(),
            answerable: Vec::new(),
            deadline_hint: std::cell::Cell::new(DeadlineHint::Unknown),
        }
    }

    /// A new deadline `t`: the next look for one must not pass it.
    fn note_deadline(&self, t: SystemTime) {
        if let DeadlineHint::Bound(bound) = self.deadline_hint.get() {
            let earliest = bound.map_or(t, |b| b.min(t));
            self.deadline_hint.set(DeadlineHint::Bound(Some(earliest)));
        }
    }

    /// Restores a message loaded from the store: whatever its state was, it is Enqueued now.
    pub fn restore_message(&mut self, mut m: QueuedMessage) {
        self.note_deadline(m.expires);
        m.state = MessageState::Enqueued;
        m.lock = None;
        self.next_seq = self.next_seq.max(m.seq + 1);
        self.queues
            .entry(m.device_id.clone())
            .or_default()
            .insert(m.seq, m);
    }

    /// A message by device and sequence number.
    pub fn message(&self, device_id: &str, seq: u64) -> Option<&QueuedMessage> {
        self.queues.get(device_id)?.get(&seq)
    }

    /// Messages queued for a device (any state).
    pub fn queue_depth(&self, device_id: &str) -> usize {
        self.queues.get(device_id).map_or(0, BTreeMap::len)
    }

    /// Accepts a message for a device, or refuses it.
    pub fn send(
        &mut self,
        now: SystemTime,
        device_id: &str,
        mut message: Message,
    ) -> Result<u64, SendError> {
        if self.registry.device(device_id).is_none() {
            return Err(SendError::DeviceNotFound(device_id.to_string()));
        }
        let size = message.wire_size();
        if size > self.limits.max_message_size {
            return Err(SendError::TooLarge {
                size,
                limit: self.limits.max_message_size,
            });
        }
        let depth = self.queue_depth(device_id);
        if depth >= self.limits.max_queue_depth {
            return Err(SendError::QueueFull {
                device: device_id.to_string(),
                limit: self.limits.max_queue_depth,
            });
        }
        let latest = now + self.limits.max_ttl;
        let expires = match message.expiry_time {
            Some(t) if t > latest => latest,
            Some(t) => t,
            None => now + self.limits.default_ttl,
        };
        if message.expiry_time.is_some_and(|t| t > latest) {
            message.expiry_time = Some(latest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.note_deadline(expires);
        self.queues
            .entry(device_id.to_string())
            .or_default()
            .insert(
                seq,
                QueuedMessage {
                    seq,
                    device_id: device_id.to_string(),
                    message,
                    state: MessageState::Enqueued,
                    delivery_count: 0,
                    lock: None,
                    enqueued: now,
                    expires,
                },
            );
        self.journal
            .push(Dirty::NewMessage(device_id.to_string(), seq));
        self.wakeups.insert(Wakeup::Device(device_id.to_string()));
        self.stats.counters.accepted += 1;
        self.stats.changed();
        Ok(seq)
    }

    /// Locks and returns the device's oldest deliverable message, for `owner`. Expired
    /// messages met on the way are dead-lettered.
    pub fn receive(&mut self, now: SystemTime, device_id: &str, owner: u64) -> Option<Delivery> {
        self.receive_with_lock(now, device_id, owner, self.limits.lock_timeout)
    }

    /// Like [`receive`](Self::receive), with a lock of the given length (HTTPS devices ask
    /// for their own).
    pub fn receive_with_lock(
        &mut self,
        now: SystemTime,
        device_id: &str,
        owner: u64,
        lock_for: std::time::Duration,
    ) -> Option<Delivery> {
        let queue = self.queues.get(device_id)?;
        let mut expired = Vec::new();
        let mut chosen = None;
        for m in queue.values() {
            if m.expires <= now {
                expired.push(m.seq);
            } else if m.state == MessageState::Enqueued
                || m.lock.as_ref().is_some_and(|l| l.expires <= now)
            {
                // a lock that has run out ends here, whether or not the sweep has met it yet
                chosen = Some(m.seq);
                break;
            }
        }
        for seq in expired {
            self.dead_letter(now, device_id, seq, FeedbackStatus::Expired);
        }
        let seq = chosen?;
        self.note_deadline(now + lock_for);
        let token = Uuid::new_v4();
        let m = self.queues.get_mut(device_id)?.get_mut(&seq)?;
        if let Some(stale) = m.lock.take() {
            self.locks.remove(&stale.token);
        }
        m.state = MessageState::Invisible;
        m.lock = Some(Lock {
            token,
            expires: now + lock_for,
            owner,
        });
        self.locks.insert(token, (device_id.to_string(), seq));
        self.stats.counters.delivered += 1;
        self.stats.changed();
        // no row changes: a lock lives in memory only (a hub that starts again has no
        // receivers, so it loads every message unlocked, and taking a lock leaves the
        // delivery count as it was)
        Some(Delivery {
            seq,
            lock_token: token,
            lock_expires: now + lock_for,
            message: m.message.clone(),
            delivery_count: m.delivery_count,
            enqueued: m.enqueued,
            expires: m.expires,
        })
    }

    /// Settles a locked message of `device_id`.
    pub fn settle(
        &mut self,
        now: SystemTime,
        device_id: &str,
        token: Uuid,
        how: Settlement,
    ) -> Result<(), LockLost> {
        if let Some(left) = self.lost_acks.get_mut(device_id) {
            // lost on the way: the message stays locked until its lock ends, then comes again
            *left -= 1;
            if *left == 0 {
                self.lost_acks.remove(device_id);
            }
            self.acks_lost += 1;
            self.stats.changed();
            return Ok(());
        }
        let (dev, seq) = self.locks.get(&token).cloned().ok_or(LockLost)?;
        if dev != device_id {
            return Err(LockLost);
        }
        let m = self
            .queues
            .get(&dev)
            .and_then(|q| q.get(&seq))
            .ok_or(LockLost)?;
        let lock_ok = m
            .lock
            .as_ref()
            .is_some_and(|l| l.token == token && l.expires > now);
        if !lock_ok {
            self.unlock(now, &dev, seq);
            return Err(LockLost);
        }
        match how {
            Settlement::Complete => {
                self.stats.counters.completed += 1;
                self.remove(&dev, seq, now, Some(FeedbackStatus::Success));
            }
            Settlement::Reject => {
                self.stats.counters.rejected += 1;
                self.dead_letter(now, &dev, seq, FeedbackStatus::Rejected)
            }
            Settlement::Abandon => {
                self.stats.counters.abandoned += 1;
                let max = self.limits.max_delivery_count;
                let m = self
                    .queues
                    .get_mut(&dev)
                    .and_then(|q| q.get_mut(&seq))
                    .ok_or(LockLost)?;
                m.delivery_count += 1;
                if m.delivery_count >= max {
                    self.dead_letter(now, &dev, seq, FeedbackStatus::DeliveryCountExceeded);
                } else {
                    self.unlock(now, &dev, seq);
                }
            }
        }
        Ok(())
    }

    /// Loses the next `count` settles (complete, reject, abandon) of `device_id`'s messages,
    /// on any transport, on top of those still to lose.
    pub fn lose_acks(&mut self, device_id: &str, count: u32) {
        if count > 0 {
            *self.lost_acks.entry(device_id.to_string()).or_default() += count;
            self.stats.changed();
        }
    }

    /// Ends every lock now, as if each had run out: the messages are Enqueued again (their
    /// delivery counts as they were) and come again; returns how many.
    pub fn expire_locks(&mut self, now: SystemTime) -> usize {
        let locked: Vec<(String, u64)> = self.locks.values().cloned().collect();
        for (d, s) in &locked {
            self.unlock(now, d, *s);
        }
        locked.len()
    }

    /// Puts back every message `owner` holds locked (its connection went away); their
    /// delivery counts do not change.
    pub fn release_owner(&mut self, now: SystemTime, owner: u64) {
        let held: Vec<(String, u64)> = self
            .locks
            .values()
            .filter(|(d, s)| {
                self.message(d, *s)
                    .and_then(|m| m.lock.as_ref())
                    .is_some_and(|l| l.owner == owner)
            })
            .cloned()
            .collect();
        for (d, s) in held {
            self.unlock(now, &d, s);
        }
    }

    /// Removes every message of a device (`Purged` feedback); returns how many.
    pub fn purge(&mut self, now: SystemTime, device_id: &str) -> Result<u64, RegistryError> {
        if self.registry.device(device_id).is_none() {
            return Err(RegistryError::DeviceNotFound(device_id.to_string()));
        }
        let seqs: Vec<u64> = self
            .queues
            .get(device_id)
            .map(|q| q.keys().copied().collect())
            .unwrap_or_default();
        for &seq in &seqs {
            self.remove(device_id, seq, now, Some(FeedbackStatus::Purged));
        }
        Ok(seqs.len() as u64)
    }

    /// Creates or updates a device.
    pub fn put_device(
        &mut self,
        now: SystemTime,
        id: &str,
        body: c2d::Device,
        if_match: Option<&str>,
    ) -> Result<c2d::Device, RegistryError> {
        let mut d = self.registry.put_device(id, body, if_match, now)?;
        self.journal.push(Dirty::Device(id.to_string()));
        self.stats.changed();
        d.cloud_to_device_message_count = self.queue_depth(id) as u64;
        Ok(d)
    }

    /// Deletes a device, its queue and its pending feedback.
    pub fn delete_device(&mut self, id: &str, if_match: Option<&str>) -> Result<(), RegistryError> {
        self.registry.delete_device(id, if_match)?;
        self.journal.push(Dirty::Device(id.to_string()));
        self.stats.changed();
        if let Some(q) = self.queues.remove(id) {
            for m in q.values() {
                if let Some(l) = &m.lock {
                    self.locks.remove(&l.token);
                }
            }
            self.journal.push(Dirty::DeviceMessages(id.to_string()));
        }
        for dirty in self.feedback.drop_device(id) {
            self.journal.push(dirty);
        }
        Ok(())
    }

    /// Applies every rule that time triggers: TTL expiry, lock expiry, feedback flushing
    /// and feedback expiry.
    pub fn sweep(&mut self, now: SystemTime) {
        let mut expired = Vec::new();
        let mut unlocked = Vec::new();
        // the earliest deadline left once the expired and unlocked are dealt with
        let mut earliest: Option<SystemTime> = None;
        for (dev, q) in &self.queues {
            for m in q.values() {
                let left = if m.expires <= now {
                    expired.push((dev.clone(), m.seq));
                    None
                } else if m.lock.as_ref().is_some_and(|l| l.expires <= now) {
                    unlocked.push((dev.clone(), m.seq));
                    Some(m.expires)
                } else {
                    Some(deadline(m))
                };
                earliest = match (earliest, left) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        self.deadline_hint.set(DeadlineHint::Bound(earliest));
        for (d, s) in expired {
            self.dead_letter(now, &d, s, FeedbackStatus::Expired);
        }
        for (d, s) in unlocked {
            self.unlock(now, &d, s);
        }
        let (dirty, wake) = self.feedback.sweep(now, &self.limits);
        self.journal.extend(dirty);
        if wake {
            self.wakeups.insert(Wakeup::Feedback);
        }
    }

    /// The next time at which [`sweep`](Self::sweep) has something to do.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        let queues = match self.deadline_hint.get() {
            DeadlineHint::Bound(bound) => bound,
            DeadlineHint::Unknown => {
                let scanned = self
                    .queues
                    .values()
                    .flat_map(|q| q.values())
                    .map(deadline)
                    .min();
                self.deadline_hint.set(DeadlineHint::Bound(scanned));
                scanned
            }
        };
        queues
            .into_iter()
            .chain(self.feedback.next_deadline(&self.limits))
            .min()
    }

    /// Locks the oldest deliverable feedback batch for `owner`.
    pub fn feedback_receive(
        &mut self,
        now: SystemTime,
        owner: u64,
    ) -> Option<crate::state::feedback::FeedbackDelivery> {
        let (delivery, dirty) = self.feedback.receive(now, owner, &self.limits)?;
        self.journal.push(dirty);
        Some(delivery)
    }

    /// Settles a delivered feedback batch.
    pub fn feedback_settle(
        &mut self,
        now: SystemTime,
        token: Uuid,
        how: Settlement,
    ) -> Result<(), LockLost> {
        let (dirty, wake) = self.feedback.settle(now, token, how, &self.limits)?;
        self.journal.extend(dirty);
        if wake {
            self.wakeups.insert(Wakeup::Feedback);
        }
        Ok(())
    }

    /// Unlocks every feedback batch `owner` holds (its link went away).
    pub fn feedback_release_owner(&mut self, owner: u64) {
        let dirty = self.feedback.release_owner(owner);
        if !dirty.is_empty() {
            self.wakeups.insert(Wakeup::Feedback);
        }
        self.journal.extend(dirty);
    }

    fn unlock(&mut self, _now: SystemTime, device_id: &str, seq: u64) {
        if let Some(m) = self.queues.get_mut(device_id).and_then(|q| q.get_mut(&seq)) {
            if let Some(l) = m.lock.take() {
                self.locks.remove(&l.token);
            }
            m.state = MessageState::Enqueued;
            self.journal
                .push(Dirty::Message(device_id.to_string(), seq));
            self.wakeups.insert(Wakeup::Device(device_id.to_string()));
            self.stats.changed();
        }
    }

    fn dead_letter(&mut self, now: SystemTime, device_id: &str, seq: u64, why: FeedbackStatus) {
        self.remove(device_id, seq, now, Some(why));
    }

    /// Removes a message and records its feedback if its ack asks for it.
    fn remove(
        &mut self,
        device_id: &str,
        seq: u64,
        now: SystemTime,
        outcome: Option<FeedbackStatus>,
    ) {
        let Some(m) = self.queues.get_mut(device_id).and_then(|q| q.remove(&seq)) else {
            return;
        };
        if let Some(l) = &m.lock {
            self.locks.remove(&l.token);
        }
        if self.queues.get(device_id).is_some_and(BTreeMap::is_empty) {
            self.queues.remove(device_id);
        }
        self.journal
            .push(Dirty::Message(device_id.to_string(), seq));
        self.stats.changed();
        // a sender still waiting for this message's answer gets it now, unless its end
        // leaves a feedback record: then the commit that writes the record answers it
        match self.feedback_record(now, device_id, &m, outcome) {
            Some(record) => {
                self.stats.feedback(&record);
                let (dirty, wake) = self.feedback.add(now, record, &self.limits);
                self.journal.extend(dirty);
                if wake {
                    self.wakeups.insert(Wakeup::Feedback);
                }
            }
            None => {
                if self.unanswered.remove(&seq) {
                    self.answerable.push(seq);
                }
            }
        }
    }

    /// The feedback record a message's end leaves, if its ack asks for one (and the dead
    /// letter it is counted as, if it did not end completed).
    fn feedback_record(
        &mut self,
        now: SystemTime,
        device_id: &str,
        m: &QueuedMessage,
        outcome: Option<FeedbackStatus>,
    ) -> Option<FeedbackRecord> {
        let status = outcome?;
        let ack = m.message.ack_mode();
        let message_id = || {
            m.message
                .message_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        if status != FeedbackStatus::Success {
            self.stats.removed(DeadLetter {
                at: now,
                device_id: device_id.to_string(),
                message_id: message_id(),
                reason: status,
                delivery_count: m.delivery_count,
                ack,
            });
        }
        let wanted = if status.is_positive() {
            ack.wants_positive()
        } else {
            ack.wants_negative()
        };
        if !wanted {
            return None;
        }
        let generation = self
            .registry
            .device(device_id)
            .map(|d| d.generation_id.clone())
            .unwrap_or_default();
        Some(FeedbackRecord::new(
            message_id(),
            device_id,
            generation,
            now,
            status,
        ))
    }
}

#[cfg(test)]
mod tests;
