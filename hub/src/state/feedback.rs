//! The hub-wide feedback queue: records wait until a batch is due (64 records, or the
//! feedback interval since the previous batch), then travel as one locked message with the
//! same complete / abandon / reject rules as C2D messages.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use c2d::FeedbackRecord;
use uuid::Uuid;

use super::journal::Dirty;
use super::limits::Limits;
use super::lock::{Lock, LockLost, Settlement};

/// A feedback message: up to a batch of records.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackBatch {
    /// Batch id.
    pub id: u64,
    /// Its records, with their ids.
    pub records: Vec<(u64, FeedbackRecord)>,
    /// Abandons so far.
    pub delivery_count: u32,
    /// Its lock while delivered.
    pub lock: Option<Lock>,
    /// When it was formed.
    pub enqueued: SystemTime,
    /// When it expires.
    pub expires: SystemTime,
}

/// A feedback batch handed to a service.
#[derive(Debug, Clone)]
pub struct FeedbackDelivery {
    /// The lock token (the AMQP delivery tag).
    pub lock_token: Uuid,
    /// The records.
    pub records: Vec<FeedbackRecord>,
    /// When the batch was formed.
    pub enqueued: SystemTime,
    /// Abandons before this delivery.
    pub delivery_count: u32,
}

/// Pending records and formed batches.
#[derive(Debug, Default)]
pub struct FeedbackQueue {
    pub(crate) pending: BTreeMap<u64, FeedbackRecord>,
    pub(crate) batches: BTreeMap<u64, FeedbackBatch>,
    locks: HashMap<Uuid, u64>,
    pub(crate) next_id: u64,
    last_flush: Option<SystemTime>,
}

impl FeedbackQueue {
    /// Restores a pending record loaded from the store.
    pub(crate) fn restore_record(&mut self, id: u64, record: FeedbackRecord) {
        self.next_id = self.next_id.max(id + 1);
        self.pending.insert(id, record);
    }

    /// Restores a batch loaded from the store; it is unlocked now.
    pub(crate) fn restore_batch(&mut self, mut batch: FeedbackBatch) {
        batch.lock = None;
        self.next_id = self.next_id.max(batch.id + 1);
        for (id, _) in &batch.records {
            self.next_id = self.next_id.max(id + 1);
        }
        self.batches.insert(batch.id, batch);
    }

    /// Records waiting for a batch.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Formed batches (delivered or not).
    pub fn batch_len(&self) -> usize {
        self.batches.len()
    }

    fn take_id(&mut self) -> u64 {
        self.next_id = self.next_id.max(1);
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds a record; returns the changed rows and whether a batch became deliverable.
    pub fn add(
        &mut self,
        now: SystemTime,
        record: FeedbackRecord,
        limits: &Limits,
    ) -> (Vec<Dirty>, bool) {
        let id = self.take_id();
        self.pending.insert(id, record);
        let mut dirty = vec![Dirty::FeedbackRecord(id)];
        let wake = self.flush_due(now, limits, &mut dirty);
        (dirty, wake)
    }

    fn flush_due(&mut self, now: SystemTime, limits: &Limits, dirty: &mut Vec<Dirty>) -> bool {
        let mut formed = false;
        loop {
            let due = !self.pending.is_empty()
                && (self.pending.len() >= limits.feedback_batch_size
                    || self
                        .last_flush
                        .is_none_or(|t| now >= t + limits.feedback_interval));
            if !due {
                return formed;
            }
            let ids: Vec<u64> = self
                .pending
                .keys()
                .take(limits.feedback_batch_size.max(1))
                .copied()
                .collect();
            let records = ids
                .iter()
                .map(|id| (*id, self.pending.remove(id).expect("id taken from pending")))
                .collect();
            let id = self.take_id();
            self.batches.insert(
                id,
                FeedbackBatch {
                    id,
                    records,
                    delivery_count: 0,
                    lock: None,
                    enqueued: now,
                    expires: now + limits.feedback_ttl,
                },
            );
            dirty.push(Dirty::FeedbackBatch(id));
            self.last_flush = Some(now);
            formed = true;
        }
    }

    /// Locks the oldest deliverable batch for `owner`.
    pub fn receive(
        &mut self,
        now: SystemTime,
        owner: u64,
        limits: &Limits,
    ) -> Option<(FeedbackDelivery, Dirty)> {
        let batch = self
            .batches
            .values_mut()
            .find(|b| b.expires > now && b.lock.as_ref().is_none_or(|l| l.expires <= now))?;
        // a lock that has run out ends here, whether or not the sweep has met it yet
        if let Some(stale) = batch.lock.take() {
            self.locks.remove(&stale.token);
        }
        let token = Uuid::new_v4();
        batch.lock = Some(Lock {
            token,
            expires: now + limits.feedback_lock_timeout,
            owner,
        });
        self.locks.insert(token, batch.id);
        Some((
            FeedbackDelivery {
                lock_token: token,
                records: batch.records.iter().map(|(_, r)| r.clone()).collect(),
                enqueued: batch.enqueued,
                delivery_count: batch.delivery_count,
            },
            Dirty::FeedbackBatch(batch.id),
        ))
    }

    /// Settles a delivered batch. Returns the changed rows and whether a batch became
    /// deliverable again.
    pub fn settle(
        &mut self,
        now: SystemTime,
        token: Uuid,
        how: Settlement,
        limits: &Limits,
    ) -> Result<(Vec<Dirty>, bool), LockLost> {
        let id = *self.locks.get(&token).ok_or(LockLost)?;
        let batch = self.batches.get_mut(&id).ok_or(LockLost)?;
        if !batch
            .lock
            .as_ref()
            .is_some_and(|l| l.token == token && l.expires > now)
        {
            // an expired lock is put back by the next sweep
            return Err(LockLost);
        }
        match how {
            Settlement::Complete | Settlement::Reject => Ok((self.remove(id), false)),
            Settlement::Abandon => {
                batch.delivery_count += 1;
                if batch.delivery_count >= limits.feedback_max_delivery_count {
                    Ok((self.remove(id), false))
                } else {
                    Ok((self.unlock(id), true))
                }
            }
        }
    }

    /// Unlocks every batch `owner` holds.
    pub fn release_owner(&mut self, owner: u64) -> Vec<Dirty> {
        let held: Vec<u64> = self
            .batches
            .values()
            .filter(|b| b.lock.as_ref().is_some_and(|l| l.owner == owner))
            .map(|b| b.id)
            .collect();
        held.into_iter().flat_map(|id| self.unlock(id)).collect()
    }

    fn unlock(&mut self, id: u64) -> Vec<Dirty> {
        match self.batches.get_mut(&id) {
            Some(b) => {
                if let Some(l) = b.lock.take() {
                    self.locks.remove(&l.token);
                }
                vec![Dirty::FeedbackBatch(id)]
            }
            None => vec![],
        }
    }

    fn remove(&mut self, id: u64) -> Vec<Dirty> {
        if let Some(b) = self.batches.remove(&id) {
            if let Some(l) = b.lock {
                self.locks.remove(&l.token);
            }
        }
        vec![Dirty::FeedbackBatch(id)]
    }

    /// Expires old batches, unlocks expired locks and forms due batches. Returns the changed
    /// rows and whether something became deliverable.
    pub fn sweep(&mut self, now: SystemTime, limits: &Limits) -> (Vec<Dirty>, bool) {
        let mut dirty = Vec::new();
        let mut wake = false;
        let ids: Vec<u64> = self.batches.keys().copied().collect();
        for id in ids {
            let b = &self.batches[&id];
            if b.expires <= now {
                dirty.extend(self.remove(id));
            } else if b.lock.as_ref().is_some_and(|l| l.expires <= now) {
                dirty.extend(self.unlock(id));
                wake = true;
            }
        }
        wake |= self.flush_due(now, limits, &mut dirty);
        (dirty, wake)
    }

    /// The next time [`sweep`](Self::sweep) has something to do.
    pub fn next_deadline(&self, limits: &Limits) -> Option<SystemTime> {
        let flush = if self.pending.is_empty() {
            None
        } else {
            Some(
                self.last_flush
                    .map_or(SystemTime::UNIX_EPOCH, |t| t + limits.feedback_interval),
            )
        };
        self.batches
            .values()
            .map(|b| {
                b.lock
                    .as_ref()
                    .map_or(b.expires, |l| l.expires.min(b.expires))
            })
            .chain(flush)
            .min()
    }

    /// Drops every pending record about a device (the device was deleted).
    pub fn drop_device(&mut self, device_id: &str) -> Vec<Dirty> {
        let mut dirty = Vec::new();
        self.pending.retain(|id, r| {
            let keep = r.device_id != device_id;
            if !keep {
                dirty.push(Dirty::FeedbackRecord(*id));
            }
            keep
        });
        let mut emptied = Vec::new();
        for b in self.batches.values_mut() {
            let before = b.records.len();
            b.records.retain(|(id, r)| {
                let keep = r.device_id != device_id;
                if !keep {
                    dirty.push(Dirty::FeedbackRecord(*id));
                }
                keep
            });
            if b.records.is_empty() {
                emptied.push(b.id);
            } else if b.records.len() != before {
                dirty.push(Dirty::FeedbackBatch(b.id));
            }
        }
        for id in emptied {
            dirty.extend(self.remove(id));
        }
        dirty
    }
}
