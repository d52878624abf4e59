//! Waits that are cancelled take nothing: a `recv` dropped as its message arrives leaves the
//! message to the next `recv`, and an `outcome` dropped before its record comes leaves the
//! record to a later call. The hub's lock is a minute on a manual clock that the tests do not
//! move, so a message lost to a cancelled wait would never come back within them.

use std::collections::BTreeMap;
use std::time::Duration;

use c2d::{Ack, FeedbackStatus, Message, Transport};
use c2d_scenarios::{recv, TestHub, WAIT};

const ROUNDS: usize = 100;

/// 100 rounds of one send racing a `recv` whose timeout (0 to 2 ms) cancels it around the
/// arrival; then every message is received exactly once.
async fn recv_cancelled_racing_arrivals(t: Transport) {
    let h = TestHub::start(|c| c.limits.max_queue_depth = ROUNDS).await;
    h.hub.create_device("dev1").await.unwrap();
    let device = h
        .device(&h.hub.device_connection_string("dev1").unwrap(), t)
        .await
        .unwrap();
    let service = h.service().await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut cancelled = 0;
    for i in 0..ROUNDS {
        let limit = Duration::from_micros((i as u64 * 37 % 50) * 40);
        let (sent, received) = tokio::join!(
            service.send("dev1", Message::new(format!("m{i}"))),
            tokio::time::timeout(limit, device.recv())
        );
        sent.unwrap();
        match received {
            Ok(m) => {
                let m = m.unwrap().expect("open");
                *seen
                    .entry(String::from_utf8_lossy(m.body()).into_owned())
                    .or_default() += 1;
                m.complete().await.unwrap();
            }
            Err(_) => cancelled += 1,
        }
    }
    assert!(cancelled > 0, "{t}: no receive was cancelled");
    while seen.values().sum::<usize>() < ROUNDS {
        let m = recv(&device).await;
        *seen
            .entry(String::from_utf8_lossy(m.body()).into_owned())
            .or_default() += 1;
        m.complete().await.unwrap();
    }
    let expected: BTreeMap<String, usize> = (0..ROUNDS).map(|i| (format!("m{i}"), 1)).collect();
    assert_eq!(seen, expected, "{t}: each message exactly once");
    // nothing more comes
    assert!(
        tokio::time::timeout(Duration::from_millis(300), device.recv())
            .await
            .is_err(),
        "{t}: a message came twice"
    );
    device.close().await;
    service.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recv_cancelled_racing_arrivals_over_mqtt() {
    recv_cancelled_racing_arrivals(Transport::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recv_cancelled_racing_arrivals_over_amqp() {
    recv_cancelled_racing_arrivals(Transport::Amqp).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recv_cancelled_racing_arrivals_over_https() {
    recv_cancelled_racing_arrivals(Transport::Https).await;
}

/// An `outcome` dropped while it waits (here by a timeout, before the device settles) leaves
/// the record to the next call, which has it once it comes.
#[tokio::test(flavor = "multi_thread")]
async fn an_outcome_cancelled_leaves_the_record_to_a_later_call() {
    let h = TestHub::start(|c| c.limits.feedback_interval = Duration::ZERO).await;
    h.hub.create_device("dev1").await.unwrap();
    let device = h
        .device(
            &h.hub.device_connection_string("dev1").unwrap(),
            Transport::Amqp,
        )
        .await
        .unwrap();
    let service = h.service().await;
    let sent = service
        .send("dev1", Message::new("hello").ack(Ack::Full))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(
            tokio::time::timeout(Duration::from_millis(20), sent.outcome())
                .await
                .is_err(),
            "no record before the device settles"
        );
    }
    recv(&device).await.complete().await.unwrap();
    let record = tokio::time::timeout(WAIT, sent.outcome())
        .await
        .expect("the record within 15 s")
        .unwrap();
    assert_eq!(record.status, FeedbackStatus::Success);
    assert_eq!(record.original_message_id, sent.message_id());
    // and again: it stays among the recent records
    let again = tokio::time::timeout(WAIT, sent.outcome()).await.unwrap();
    assert_eq!(again.unwrap().status, FeedbackStatus::Success);
    device.close().await;
    service.close().await;
}
