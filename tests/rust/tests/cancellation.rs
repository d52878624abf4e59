//! Waits that are cancelled take nothing: a `recv` dropped as its message arrives leaves the
//! message to the next `recv`, and an `outcome` dropped before its record comes leaves the
//! record to a later call. The hub's lock is a minute on a manual clock that the tests do not
//! move, so a message lost to a cancelled wait would never come back within them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use c2d::{Ack, DeviceClient, FeedbackStatus, Message, ServiceClient, Transport};
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

/// A connect to a hub that accepts TCP and never answers (the TLS handshake waits) ends as
/// soon as it is dropped, long before its 30 s operation timeout: the connection attempt goes
/// with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_connect_to_a_hub_that_never_answers_is_dropped_at_once() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let device = |t| async move {
        DeviceClient::builder("HostName=localhost;DeviceId=d;SharedAccessKey=a2V5")
            .unwrap()
            .transport(t)
            .port(port)
            .connect()
            .await
            .map(drop)
    };
    let service = async {
        ServiceClient::builder("HostName=localhost;SharedAccessKeyName=s;SharedAccessKey=a2V5")
            .unwrap()
            .port(port)
            .connect()
            .await
            .map(drop)
    };
    let started = Instant::now();
    let limit = Duration::from_millis(200);
    assert!(tokio::time::timeout(limit, device(Transport::Mqtt))
        .await
        .is_err());
    assert!(tokio::time::timeout(limit, device(Transport::Amqp))
        .await
        .is_err());
    assert!(tokio::time::timeout(limit, service).await.is_err());
    // three attempts, each ended by its timeout, not by the 30 s of the operation
    assert!(started.elapsed() < Duration::from_secs(10));
    accepting.abort();
}
