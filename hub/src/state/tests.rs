//! The state machine, rule by rule, on a manual timeline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use c2d::{Ack, Device, FeedbackStatus, Message};

use super::*;

const OWNER: u64 = 7;

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn hub_with(limits: Limits) -> HubState {
    let mut h = HubState::new(limits);
    h.put_device(t0(), "d1", Device::new_sas("d1"), None)
        .unwrap();
    h.put_device(t0(), "d2", Device::new_sas("d2"), None)
        .unwrap();
    h
}

fn hub() -> HubState {
    hub_with(Limits {
        feedback_interval: Duration::ZERO,
        ..Limits::default()
    })
}

fn msg(id: &str, ack: Ack) -> Message {
    Message::new(format!("body-{id}")).message_id(id).ack(ack)
}

/// Every feedback record formed so far, in order (draining the batches).
fn feedback(h: &mut HubState, now: SystemTime) -> Vec<(String, FeedbackStatus)> {
    h.sweep(now);
    let mut out = Vec::new();
    while let Some(d) = h.feedback_receive(now, 99) {
        out.extend(
            d.records
                .iter()
                .map(|r| (r.original_message_id.clone(), r.status)),
        );
        h.feedback_settle(now, d.lock_token, Settlement::Complete)
            .unwrap();
    }
    out
}

#[test]
fn complete_removes_and_gives_success_feedback() {
    let mut h = hub();
    h.send(t0(), "d1", msg("m1", Ack::Full)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    assert_eq!(d.message.body, b"body-m1");
    assert!(
        h.receive(t0(), "d1", OWNER).is_none(),
        "an invisible message is not delivered twice"
    );
    h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .unwrap();
    assert_eq!(h.queue_depth("d1"), 0);
    assert_eq!(
        feedback(&mut h, t0()),
        vec![("m1".into(), FeedbackStatus::Success)]
    );
    assert_eq!(
        h.settle(t0(), "d1", d.lock_token, Settlement::Complete),
        Err(LockLost)
    );
}

#[test]
fn reject_dead_letters_with_rejected_feedback() {
    let mut h = hub();
    h.send(t0(), "d1", msg("m1", Ack::Negative)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", d.lock_token, Settlement::Reject)
        .unwrap();
    assert_eq!(h.queue_depth("d1"), 0);
    assert_eq!(
        feedback(&mut h, t0()),
        vec![("m1".into(), FeedbackStatus::Rejected)]
    );
}

#[test]
fn ack_modes_select_feedback() {
    let mut h = hub();
    for (id, ack) in [
        ("none", Ack::None),
        ("pos", Ack::Positive),
        ("neg", Ack::Negative),
        ("full", Ack::Full),
    ] {
        h.send(t0(), "d1", msg(id, ack)).unwrap();
        let d = h.receive(t0(), "d1", OWNER).unwrap();
        h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
            .unwrap();
        h.send(t0(), "d1", msg(id, ack)).unwrap();
        let d = h.receive(t0(), "d1", OWNER).unwrap();
        h.settle(t0(), "d1", d.lock_token, Settlement::Reject)
            .unwrap();
    }
    assert_eq!(
        feedback(&mut h, t0()),
        vec![
            ("pos".into(), FeedbackStatus::Success),
            ("neg".into(), FeedbackStatus::Rejected),
            ("full".into(), FeedbackStatus::Success),
            ("full".into(), FeedbackStatus::Rejected),
        ]
    );
}

#[test]
fn abandon_redelivers_and_counts_until_the_limit() {
    let mut h = hub_with(Limits {
        max_delivery_count: 3,
        feedback_interval: Duration::ZERO,
        ..Limits::default()
    });
    h.send(t0(), "d1", msg("m1", Ack::Full)).unwrap();
    for expected_count in 0..3 {
        let d = h
            .receive(t0(), "d1", OWNER)
            .expect("redelivered after abandon");
        assert_eq!(d.delivery_count, expected_count);
        h.settle(t0(), "d1", d.lock_token, Settlement::Abandon)
            .unwrap();
    }
    assert_eq!(
        h.queue_depth("d1"),
        0,
        "the third abandon reaches max delivery count 3"
    );
    assert_eq!(
        feedback(&mut h, t0()),
        vec![("m1".into(), FeedbackStatus::DeliveryCountExceeded)]
    );
}

#[test]
fn lock_expiry_requeues_without_counting() {
    let mut h = hub();
    h.send(t0(), "d1", msg("m1", Ack::Full)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    let later = t0() + Duration::from_secs(61);
    assert_eq!(h.next_deadline(), Some(t0() + Duration::from_secs(60)));
    h.sweep(later);
    assert_eq!(
        h.settle(later, "d1", d.lock_token, Settlement::Complete),
        Err(LockLost)
    );
    let again = h.receive(later, "d1", OWNER).unwrap();
    assert_eq!(again.delivery_count, 0);
    assert_ne!(again.lock_token, d.lock_token);
    // a late settle with an expired lock, before any sweep, is lost too and requeues
    let much_later = later + Duration::from_secs(61);
    assert_eq!(
        h.settle(much_later, "d1", again.lock_token, Settlement::Complete),
        Err(LockLost)
    );
    assert!(h.receive(much_later, "d1", OWNER).is_some());
}

#[test]
fn a_receive_after_the_lock_ran_out_needs_no_sweep() {
    let mut h = hub();
    h.send(t0(), "d1", msg("m1", Ack::Full)).unwrap();
    h.send(t0(), "d1", msg("m2", Ack::Full)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    let later = t0() + Duration::from_secs(61);
    let again = h.receive(later, "d1", OWNER).unwrap();
    assert_eq!(again.message.message_id, Some("m1".into()), "oldest first");
    assert_eq!(again.delivery_count, 0);
    assert_eq!(
        h.settle(later, "d1", d.lock_token, Settlement::Complete),
        Err(LockLost),
        "the old lock is gone"
    );
    h.settle(later, "d1", again.lock_token, Settlement::Complete)
        .unwrap();
    assert_eq!(
        feedback(&mut h, later),
        vec![("m1".into(), FeedbackStatus::Success)]
    );

    // the same for a feedback batch
    let m2 = h.receive(later, "d1", OWNER).unwrap();
    h.settle(later, "d1", m2.lock_token, Settlement::Complete)
        .unwrap();
    h.sweep(later);
    let f = h.feedback_receive(later, 1).unwrap();
    let after_its_lock = later + Duration::from_secs(61);
    let f2 = h.feedback_receive(after_its_lock, 2).unwrap();
    assert_eq!(f2.records[0].original_message_id, "m2");
    assert_eq!(
        h.feedback_settle(after_its_lock, f.lock_token, Settlement::Complete),
        Err(LockLost)
    );
    h.feedback_settle(after_its_lock, f2.lock_token, Settlement::Complete)
        .unwrap();
}

#[test]
fn ttl_expires_enqueued_and_invisible_messages() {
    let mut h = hub();
    let mut short = msg("short", Ack::Negative);
    short.expiry_time = Some(t0() + Duration::from_secs(10));
    h.send(t0(), "d1", short).unwrap();
    h.send(t0(), "d1", msg("default", Ack::Full)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    assert_eq!(d.message.message_id, Some("short".into()));
    h.sweep(t0() + Duration::from_secs(10));
    assert_eq!(h.queue_depth("d1"), 1);
    let an_hour = t0() + Duration::from_secs(3600);
    assert!(
        h.receive(an_hour, "d1", OWNER).is_none(),
        "default TTL is one hour"
    );
    assert_eq!(
        feedback(&mut h, an_hour),
        vec![
            ("short".into(), FeedbackStatus::Expired),
            ("default".into(), FeedbackStatus::Expired)
        ]
    );
}

#[test]
fn expiry_is_capped_at_max_ttl() {
    let mut h = hub();
    let mut far = msg("far", Ack::None);
    far.expiry_time = Some(t0() + Duration::from_secs(30 * 24 * 3600));
    let seq = h.send(t0(), "d1", far).unwrap();
    assert_eq!(
        h.message("d1", seq).unwrap().expires,
        t0() + Duration::from_secs(2 * 24 * 3600)
    );
}

#[test]
fn queue_depth_size_and_unknown_device_are_refused() {
    let mut h = hub_with(Limits {
        max_queue_depth: 2,
        max_message_size: 100,
        ..Limits::default()
    });
    h.send(t0(), "d1", msg("a", Ack::None)).unwrap();
    h.send(t0(), "d1", msg("b", Ack::None)).unwrap();
    assert_eq!(
        h.send(t0(), "d1", msg("c", Ack::None)),
        Err(SendError::QueueFull {
            device: "d1".into(),
            limit: 2
        })
    );
    // a locked message still counts against the depth
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    assert!(h.send(t0(), "d1", msg("c", Ack::None)).is_err());
    h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .unwrap();
    h.send(t0(), "d1", msg("c", Ack::None)).unwrap();
    let big = Message::new(vec![0u8; 101]);
    assert_eq!(
        h.send(t0(), "d2", big),
        Err(SendError::TooLarge {
            size: 101,
            limit: 100
        })
    );
    let exactly = Message::new(vec![0u8; 100]);
    h.send(t0(), "d2", exactly).unwrap();
    assert_eq!(
        h.send(t0(), "nope", msg("x", Ack::None)),
        Err(SendError::DeviceNotFound("nope".into()))
    );
}

#[test]
fn fifo_per_device_and_locks_are_per_device() {
    let mut h = hub();
    h.send(t0(), "d1", msg("1", Ack::None)).unwrap();
    h.send(t0(), "d2", msg("x", Ack::None)).unwrap();
    h.send(t0(), "d1", msg("2", Ack::None)).unwrap();
    let a = h.receive(t0(), "d1", OWNER).unwrap();
    let b = h.receive(t0(), "d1", OWNER).unwrap();
    assert_eq!(
        (a.message.message_id, b.message.message_id),
        (Some("1".into()), Some("2".into()))
    );
    assert_eq!(
        h.settle(t0(), "d2", a.lock_token, Settlement::Complete),
        Err(LockLost),
        "d2 cannot settle d1's lock"
    );
}

#[test]
fn released_owner_returns_messages_unchanged() {
    let mut h = hub();
    h.send(t0(), "d1", msg("1", Ack::None)).unwrap();
    h.send(t0(), "d1", msg("2", Ack::None)).unwrap();
    let a = h.receive(t0(), "d1", OWNER).unwrap();
    let b = h.receive(t0(), "d1", OWNER + 1).unwrap();
    h.release_owner(t0(), OWNER);
    assert_eq!(
        h.settle(t0(), "d1", a.lock_token, Settlement::Complete),
        Err(LockLost)
    );
    let again = h.receive(t0(), "d1", OWNER).unwrap();
    assert_eq!(
        (again.message.message_id, again.delivery_count),
        (Some("1".into()), 0)
    );
    h.settle(t0(), "d1", b.lock_token, Settlement::Complete)
        .unwrap();
}

#[test]
fn purge_removes_everything_with_purged_feedback() {
    let mut h = hub();
    h.send(t0(), "d1", msg("a", Ack::Full)).unwrap();
    h.send(t0(), "d1", msg("b", Ack::Positive)).unwrap();
    let locked = h.receive(t0(), "d1", OWNER).unwrap();
    assert_eq!(h.purge(t0(), "d1"), Ok(2));
    assert_eq!(h.queue_depth("d1"), 0);
    assert_eq!(
        h.settle(t0(), "d1", locked.lock_token, Settlement::Complete),
        Err(LockLost)
    );
    assert_eq!(
        feedback(&mut h, t0()),
        vec![("a".into(), FeedbackStatus::Purged)]
    );
    assert!(h.purge(t0(), "ghost").is_err());
}

#[test]
fn deleting_a_device_drops_its_queue_and_pending_feedback() {
    let mut h = hub_with(Limits {
        feedback_interval: Duration::from_secs(15),
        ..Limits::default()
    });
    // the first record flushes at once; the next ones wait for the interval
    h.send(t0(), "d2", msg("first", Ack::Full)).unwrap();
    let d = h.receive(t0(), "d2", OWNER).unwrap();
    h.settle(t0(), "d2", d.lock_token, Settlement::Complete)
        .unwrap();
    h.send(t0(), "d1", msg("a", Ack::Full)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .unwrap();
    h.send(t0(), "d1", msg("b", Ack::Full)).unwrap();
    assert_eq!(h.feedback.pending_len(), 1);
    h.delete_device("d1", None).unwrap();
    assert_eq!(h.queue_depth("d1"), 0);
    assert_eq!(h.feedback.pending_len(), 0);
    assert_eq!(
        feedback(&mut h, t0() + Duration::from_secs(15)),
        vec![("first".into(), FeedbackStatus::Success)]
    );
    assert!(h.send(t0(), "d1", msg("c", Ack::None)).is_err());
}

#[test]
fn feedback_batches_by_size_and_interval() {
    let mut h = hub_with(Limits {
        feedback_batch_size: 3,
        feedback_interval: Duration::from_secs(15),
        ..Limits::default()
    });
    let complete = |h: &mut HubState, id: &str, at: SystemTime| {
        h.send(at, "d1", msg(id, Ack::Positive)).unwrap();
        let d = h.receive(at, "d1", OWNER).unwrap();
        h.settle(at, "d1", d.lock_token, Settlement::Complete)
            .unwrap();
    };
    complete(&mut h, "m0", t0()); // first record: sent at once
    for i in 1..=4 {
        complete(&mut h, &format!("m{i}"), t0() + Duration::from_secs(1));
    }
    // m1..m3 filled a batch; m4 waits for the interval
    let at = t0() + Duration::from_secs(1);
    let sizes: Vec<usize> = std::iter::from_fn(|| {
        let d = h.feedback_receive(at, 1)?;
        h.feedback_settle(at, d.lock_token, Settlement::Complete)
            .unwrap();
        Some(d.records.len())
    })
    .collect();
    assert_eq!(sizes, vec![1, 3]);
    assert_eq!(h.next_deadline(), Some(t0() + Duration::from_secs(16)));
    h.sweep(t0() + Duration::from_secs(16));
    assert_eq!(
        h.feedback_receive(t0() + Duration::from_secs(16), 1)
            .unwrap()
            .records
            .len(),
        1
    );
}

#[test]
fn feedback_abandon_lock_expiry_and_ttl() {
    let mut h = hub_with(Limits {
        feedback_max_delivery_count: 2,
        feedback_interval: Duration::ZERO,
        ..Limits::default()
    });
    h.send(t0(), "d1", msg("m", Ack::Positive)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .unwrap();
    let f = h.feedback_receive(t0(), 1).unwrap();
    assert!(
        h.feedback_receive(t0(), 2).is_none(),
        "a locked batch goes to one receiver"
    );
    h.feedback_settle(t0(), f.lock_token, Settlement::Abandon)
        .unwrap();
    let f = h.feedback_receive(t0(), 2).unwrap();
    assert_eq!(f.delivery_count, 1);
    // lock expiry puts it back without counting
    h.sweep(t0() + Duration::from_secs(61));
    let f2 = h
        .feedback_receive(t0() + Duration::from_secs(61), 3)
        .unwrap();
    assert_eq!(
        h.feedback_settle(
            t0() + Duration::from_secs(61),
            f.lock_token,
            Settlement::Complete
        ),
        Err(LockLost)
    );
    h.feedback_settle(
        t0() + Duration::from_secs(61),
        f2.lock_token,
        Settlement::Abandon,
    )
    .unwrap();
    assert_eq!(h.feedback.batch_len(), 0, "dropped at max delivery count");
    // TTL
    h.send(t0(), "d1", msg("n", Ack::Positive)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .unwrap();
    h.sweep(t0() + Duration::from_secs(3600));
    assert_eq!(h.feedback.batch_len(), 0);
}

#[test]
fn the_stats_count_every_outcome_and_keep_the_dead_letters() {
    let mut h = hub();
    let before = h.stats.version;
    // abandoned to the limit (10): dead-lettered, with the deliveries it had; no feedback asked
    h.send(t0(), "d1", msg("tired", Ack::None)).unwrap();
    for _ in 0..h.limits.max_delivery_count {
        let d = h.receive(t0(), "d1", OWNER).unwrap();
        h.settle(t0(), "d1", d.lock_token, Settlement::Abandon)
            .unwrap();
    }
    // rejected, asking for negative feedback; completed, asking for none
    h.send(t0(), "d1", msg("bad", Ack::Negative)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", d.lock_token, Settlement::Reject)
        .unwrap();
    h.send(t0(), "d1", msg("good", Ack::None)).unwrap();
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .unwrap();
    // purged, asking for full feedback
    h.send(t0(), "d2", msg("old", Ack::Full)).unwrap();
    h.purge(t0(), "d2").unwrap();

    let c = h.stats.counters;
    let max = u64::from(h.limits.max_delivery_count);
    assert_eq!(
        (
            c.accepted,
            c.delivered,
            c.completed,
            c.rejected,
            c.abandoned
        ),
        (4, max + 2, 1, 1, max)
    );
    assert_eq!((c.expired, c.dead_lettered, c.purged), (0, 2, 1));
    let letters: Vec<_> = h
        .stats
        .dead_letters
        .iter()
        .map(|l| (l.message_id.as_str(), l.reason, l.delivery_count, l.ack))
        .collect();
    assert_eq!(
        letters,
        [
            (
                "tired",
                FeedbackStatus::DeliveryCountExceeded,
                h.limits.max_delivery_count,
                Ack::None
            ),
            ("bad", FeedbackStatus::Rejected, 0, Ack::Negative),
        ]
    );
    // records only where the ack asked: Rejected for "bad", Purged for "old"
    assert_eq!(h.stats.feedback_records, [0, 0, 0, 1, 1]);
    let recent: Vec<_> = h
        .stats
        .recent_feedback
        .iter()
        .map(|r| (r.original_message_id.as_str(), r.status))
        .collect();
    assert_eq!(
        recent,
        [
            ("bad", FeedbackStatus::Rejected),
            ("old", FeedbackStatus::Purged)
        ]
    );
    assert!(h.stats.version > before);
}

/// The next deadline is never later than the earliest real one (so no expiry or lock end is
/// missed), and a sweep makes it exact again once settled messages left an earlier one.
#[test]
fn the_next_deadline_follows_sends_locks_and_sweeps() {
    let mut h = hub();
    assert_eq!(h.next_deadline(), None);
    let hour = t0() + Duration::from_secs(3600);
    h.send(t0(), "d1", msg("m1", Ack::None)).unwrap();
    assert_eq!(h.next_deadline(), Some(hour));
    // a shorter TTL comes later: the deadline moves earlier
    let mut short = msg("m2", Ack::None);
    short.expiry_time = Some(t0() + Duration::from_secs(10));
    h.send(t0(), "d2", short).unwrap();
    assert_eq!(h.next_deadline(), Some(t0() + Duration::from_secs(10)));
    // a lock (60 s) on m1, which is then completed: the bound stays early, which costs one
    // sweep; the sweep at 11 s expires m2 and finds the one deadline left, m1's hour
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .unwrap();
    h.send(t0(), "d1", msg("m3", Ack::None)).unwrap();
    assert_eq!(h.next_deadline(), Some(t0() + Duration::from_secs(10)));
    h.sweep(t0() + Duration::from_secs(11));
    assert_eq!(h.queue_depth("d2"), 0, "m2 expired");
    assert_eq!(h.next_deadline(), Some(hour));
    // a lock taken after the sweep is seen at once
    h.receive(t0() + Duration::from_secs(12), "d1", OWNER)
        .unwrap();
    assert_eq!(h.next_deadline(), Some(t0() + Duration::from_secs(72)));
}

#[test]
fn a_lost_ack_changes_nothing_until_the_count_is_used_up() {
    let mut h = hub();
    h.send(t0(), "d1", msg("m1", Ack::Full)).unwrap();
    h.send(t0(), "d2", msg("m2", Ack::Full)).unwrap();
    h.lose_acks("d1", 2);
    let d = h.receive(t0(), "d1", OWNER).unwrap();
    // answered as done, but the message is still there, locked
    assert!(h
        .settle(t0(), "d1", d.lock_token, Settlement::Complete)
        .is_ok());
    assert_eq!(h.queue_depth("d1"), 1);
    assert!(h.receive(t0(), "d1", OWNER).is_none(), "still locked");
    assert_eq!((h.acks_lost, h.lost_acks.get("d1").copied()), (1, Some(1)));
    // another device's acknowledgements are not touched
    let d2 = h.receive(t0(), "d2", OWNER).unwrap();
    h.settle(t0(), "d2", d2.lock_token, Settlement::Complete)
        .unwrap();
    assert_eq!(h.queue_depth("d2"), 0);
    // the lock ends, the message comes again; the second lost ack goes, the third lands
    assert_eq!(h.expire_locks(t0()), 1);
    let again = h.receive(t0(), "d1", OWNER).unwrap();
    assert_eq!(again.message.body, b"body-m1");
    h.settle(t0(), "d1", again.lock_token, Settlement::Reject)
        .unwrap();
    assert_eq!(h.queue_depth("d1"), 1);
    assert!(h.lost_acks.is_empty());
    h.expire_locks(t0());
    let third = h.receive(t0(), "d1", OWNER).unwrap();
    h.settle(t0(), "d1", third.lock_token, Settlement::Complete)
        .unwrap();
    assert_eq!(h.queue_depth("d1"), 0);
    assert_eq!(h.acks_lost, 2);
    assert_eq!(feedback(&mut h, t0() + Duration::from_secs(1)).len(), 2);
}

#[test]
fn expire_locks_ends_every_lock_and_counts_them() {
    let mut h = hub();
    for i in 0..3 {
        h.send(t0(), "d1", msg(&format!("m{i}"), Ack::None))
            .unwrap();
    }
    let first = h.receive(t0(), "d1", OWNER).unwrap();
    h.receive(t0(), "d1", OWNER).unwrap();
    assert_eq!(h.expire_locks(t0()), 2);
    assert_eq!(h.expire_locks(t0()), 0);
    assert!(
        h.settle(t0(), "d1", first.lock_token, Settlement::Complete)
            .is_err(),
        "its lock is gone"
    );
    // all three can be delivered again
    for _ in 0..3 {
        assert!(h.receive(t0(), "d1", OWNER).is_some());
    }
}
