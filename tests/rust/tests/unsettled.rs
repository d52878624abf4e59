//! Messages the application does not settle: dropped ones come back when their lock ends
//! without ever stopping the deliveries after them, put-back ones come first to the next
//! receive, and a settle the transport cannot make leaves the message where it was.

use std::collections::BTreeSet;
use std::time::Duration;

use c2d::{DeviceClient, ErrorKind, Message, Settlement, Transport};
use c2d_scenarios::{recv, TestHub};

async fn hub() -> TestHub {
    let h = TestHub::start(|_| {}).await;
    h.hub.create_device("dev1").await.unwrap();
    h
}

async fn device(h: &TestHub, t: Transport) -> DeviceClient {
    let cs = h.hub.device_connection_string("dev1").unwrap();
    h.device(&cs, t).await.unwrap()
}

/// Sends `bodies` to dev1 in order.
async fn send(h: &TestHub, bodies: impl IntoIterator<Item = String>) {
    let service = h.service().await;
    for body in bodies {
        service.send("dev1", Message::new(body)).await.unwrap();
    }
    service.close().await;
}

/// Waits for the hub's queue of dev1 to be empty (an AMQP completion is sent settled, so the
/// device does not wait for the hub to apply it).
async fn drained(h: &TestHub) {
    for _ in 0..100 {
        if h.hub.queue_depth("dev1") == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} messages still queued", h.hub.queue_depth("dev1"));
}

fn text(m: &c2d::ReceivedMessage) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

/// More messages dropped unsettled than the client may hold (16) never stop the deliveries:
/// over AMQP the link credit each one held comes back at once; over MQTT each holds its slot
/// in the hub's window of unacknowledged PUBLISHes until its lock ends. Once the locks end
/// every message comes again and is completed.
async fn dropped_messages(t: Transport) {
    let h = hub().await;
    let device = device(&h, t).await;
    send(&h, (0..20).map(|i| format!("m{i}"))).await;
    let mut dropped = 0;
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(2), device.recv()).await {
        drop(next.unwrap().expect("open"));
        dropped += 1;
    }
    // MQTT: the 16 of the hub's window; AMQP: all of them, credit coming back with each drop
    let expected = if t == Transport::Amqp { 20 } else { 16 };
    assert_eq!(dropped, expected, "{t}: messages delivered while dropped");
    h.clock.advance(Duration::from_secs(61));
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let m = recv(&device).await;
        seen.insert(text(&m));
        m.complete().await.unwrap();
    }
    assert_eq!(seen.len(), 20, "{t}: every message once: {seen:?}");
    drained(&h).await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_messages_over_mqtt() {
    dropped_messages(Transport::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_messages_over_amqp() {
    dropped_messages(Transport::Amqp).await;
}

/// A message put back comes to the next receive, before the newer ones, and keeps its place:
/// over MQTT the completion of a later message waits for its PUBACK, sent in order.
async fn put_back(t: Transport) {
    let h = hub().await;
    let device = device(&h, t).await;
    send(&h, ["first".into(), "second".into()]).await;
    let first = recv(&device).await;
    let token = first.lock_token().map(str::to_string);
    assert_eq!(text(&first), "first");
    first.put_back();
    let again = recv(&device).await;
    assert_eq!(
        text(&again),
        "first",
        "{t}: the put-back message comes first"
    );
    assert_eq!(
        again.lock_token().map(str::to_string),
        token,
        "{t}: same delivery"
    );
    let second = recv(&device).await;
    assert_eq!(text(&second), "second");
    again.put_back();
    second.complete().await.unwrap();
    let first = recv(&device).await;
    assert_eq!(text(&first), "first");
    first.complete().await.unwrap();
    drained(&h).await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn put_back_over_mqtt() {
    put_back(Transport::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn put_back_over_amqp() {
    put_back(Transport::Amqp).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn put_back_over_https() {
    put_back(Transport::Https).await;
}

/// What the C, Python and Node bindings hold: a settlement the transport cannot make is
/// refused and leaves the message to be completed; a second settlement is AlreadySettled.
#[tokio::test(flavor = "multi_thread")]
async fn a_settle_mqtt_cannot_make_changes_nothing() {
    let h = hub().await;
    let device = device(&h, Transport::Mqtt).await;
    send(&h, ["poison".into()]).await;
    let held = c2d::SettleOnce::new(recv(&device).await);
    for how in [Settlement::Reject, Settlement::Abandon] {
        let e = held.take(how).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{how:?}");
        assert!(!held.is_settled());
    }
    held.take(Settlement::Complete)
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert!(held.is_settled());
    let again = held.take(Settlement::Complete).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadySettled);
    drained(&h).await;
    device.close().await;
}
