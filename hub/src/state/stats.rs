//! What the hub has done since it started, for its live page and its metrics: counters of
//! every message event, the feedback records it produced and the messages it dead-lettered
//! (the most recent of each), and a version that changes with every change of the state.
//!
//! Kept in memory beside the queues ([`super::HubState::stats`]); a restart starts
//! them from zero, as Prometheus expects of counters.

use std::collections::VecDeque;
use std::time::SystemTime;

use c2d::{Ack, FeedbackRecord, FeedbackStatus};

/// How many feedback records and dead letters are kept to show.
pub const RECENT: usize = 100;

/// Message events counted since the hub started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Sends accepted (on disk).
    pub accepted: u64,
    /// Deliveries to devices (a message delivered twice counts twice).
    pub delivered: u64,
    /// Messages completed by their device.
    pub completed: u64,
    /// Messages rejected by their device (also counted as dead-lettered).
    pub rejected: u64,
    /// Abandons (a message put back by its device).
    pub abandoned: u64,
    /// Messages whose time to live ran out (also counted as dead-lettered).
    pub expired: u64,
    /// Messages dead-lettered: rejected, expired, or past the max delivery count.
    pub dead_lettered: u64,
    /// Messages removed by a purge.
    pub purged: u64,
}

/// A message the hub dead-lettered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// When.
    pub at: SystemTime,
    /// The device it was for.
    pub device_id: String,
    /// Its message id (empty if it had none).
    pub message_id: String,
    /// Rejected, Expired or DeliveryCountExceeded.
    pub reason: FeedbackStatus,
    /// Its abandons before it was dead-lettered.
    pub delivery_count: u32,
    /// The feedback it asked for.
    pub ack: Ack,
}

/// The hub's counters and recent outcomes.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Message events.
    pub counters: Counters,
    /// Feedback records produced, by status (in [`FEEDBACK_STATUSES`] order).
    pub feedback_records: [u64; 5],
    /// The most recent feedback records, oldest first.
    pub recent_feedback: VecDeque<FeedbackRecord>,
    /// The most recent dead letters, oldest first.
    pub dead_letters: VecDeque<DeadLetter>,
    /// Changes whenever the hub's state does (devices, queues, locks).
    pub version: u64,
}

/// Every feedback status, in the order of [`Stats::feedback_records`].
pub const FEEDBACK_STATUSES: [FeedbackStatus; 5] = [
    FeedbackStatus::Success,
    FeedbackStatus::Expired,
    FeedbackStatus::DeliveryCountExceeded,
    FeedbackStatus::Rejected,
    FeedbackStatus::Purged,
];

fn push<T>(ring: &mut VecDeque<T>, item: T) {
    if ring.len() == RECENT {
        ring.pop_front();
    }
    ring.push_back(item);
}

impl Stats {
    /// Records that the state changed.
    pub(crate) fn changed(&mut self) {
        self.version = self.version.wrapping_add(1);
    }

    /// Records a message that left its queue other than by completion: purged or
    /// dead-lettered (`letter.reason` says which).
    pub(crate) fn removed(&mut self, letter: DeadLetter) {
        match letter.reason {
            FeedbackStatus::Success => return,
            FeedbackStatus::Purged => {
                self.counters.purged += 1;
                return;
            }
            FeedbackStatus::Expired => self.counters.expired += 1,
            FeedbackStatus::Rejected | FeedbackStatus::DeliveryCountExceeded => {}
        }
        self.counters.dead_lettered += 1;
        push(&mut self.dead_letters, letter);
    }

    /// Records a feedback record the hub produced.
    pub(crate) fn feedback(&mut self, record: &FeedbackRecord) {
        if let Some(i) = FEEDBACK_STATUSES.iter().position(|s| *s == record.status) {
            self.feedback_records[i] += 1;
        }
        push(&mut self.recent_feedback, record.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(reason: FeedbackStatus) -> DeadLetter {
        DeadLetter {
            at: SystemTime::UNIX_EPOCH,
            device_id: "d".into(),
            message_id: "m".into(),
            reason,
            delivery_count: 0,
            ack: Ack::None,
        }
    }

    #[test]
    fn only_dead_letters_are_listed_and_the_list_is_bounded() {
        let mut s = Stats::default();
        s.removed(letter(FeedbackStatus::Success));
        s.removed(letter(FeedbackStatus::Purged));
        assert!(s.dead_letters.is_empty());
        assert_eq!(s.counters.purged, 1);
        for _ in 0..RECENT + 5 {
            s.removed(letter(FeedbackStatus::Expired));
        }
        s.removed(letter(FeedbackStatus::DeliveryCountExceeded));
        assert_eq!(s.dead_letters.len(), RECENT);
        assert_eq!(
            s.dead_letters.back().unwrap().reason,
            FeedbackStatus::DeliveryCountExceeded
        );
        assert_eq!(s.counters.expired, RECENT as u64 + 5);
        assert_eq!(s.counters.dead_lettered, RECENT as u64 + 6);
    }
}
