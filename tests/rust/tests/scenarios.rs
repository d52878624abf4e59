//! The scenario list of docs/architecture.md for the Rust clients, on every device transport
//! (HTTPS polling every 50 ms),
//! against a local hub on ephemeral ports: complete; reject → Rejected; abandon → redelivery; max
//! delivery → DeliveryCountExceeded; TTL → Expired; purge → Purged; lock expiry →
//! redelivery; queue full; too large; unknown device; bad token; closed client.

use std::time::Duration;

use c2d::{Ack, ErrorKind, FeedbackStatus, Message, Settlement, Transport};
use c2d_scenarios::{recv, TestHub, WAIT};

async fn hub() -> TestHub {
    TestHub::start(|config| {
        config.limits.feedback_interval = Duration::ZERO;
        config.limits.max_delivery_count = 3;
        config.limits.max_queue_depth = 5;
        config.limits.max_message_size = 1000;
    })
    .await
}

async fn outcome(s: &c2d::SentMessage) -> FeedbackStatus {
    tokio::time::timeout(WAIT, s.outcome())
        .await
        .expect("feedback within 15 s")
        .unwrap()
        .status
}

async fn scenarios(t: Transport) {
    let h = hub().await;
    let service = h.service().await;
    let dev = service.registry().create_device("dev1").await.unwrap();
    let cs = dev.connection_string(h.hub.host_name()).unwrap();
    let device = h.device(&cs, t).await.unwrap();
    // every settlement, not MQTT's complete only
    let amqp = matches!(t, Transport::Amqp | Transport::AmqpWs | Transport::Https);

    // complete → Success, with the properties kept
    let sent = service
        .send(
            "dev1",
            Message::new("hello")
                .ack(Ack::Full)
                .property("colour", "blue")
                .correlation_id("c-1"),
        )
        .await
        .unwrap();
    let m = recv(&device).await;
    assert_eq!(m.body(), b"hello");
    assert_eq!(m.message().get_property("colour"), Some("blue"));
    assert_eq!(
        m.message()
            .correlation_id
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("c-1")
    );
    assert_eq!(
        m.message()
            .message_id
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(sent.message_id())
    );
    m.complete().await.unwrap();
    assert_eq!(outcome(&sent).await, FeedbackStatus::Success);

    // reject → Rejected; abandon → redelivery; max delivery → DeliveryCountExceeded
    let rejected = service
        .send("dev1", Message::new("reject me").ack(Ack::Full))
        .await
        .unwrap();
    let m = recv(&device).await;
    if amqp {
        m.reject().await.unwrap();
        assert_eq!(outcome(&rejected).await, FeedbackStatus::Rejected);
        let abandoned = service
            .send("dev1", Message::new("abandon me").ack(Ack::Full))
            .await
            .unwrap();
        for count in 0..3 {
            let m = recv(&device).await;
            assert_eq!(m.body(), b"abandon me");
            assert_eq!(m.delivery_count(), count);
            m.abandon().await.unwrap();
        }
        assert_eq!(
            outcome(&abandoned).await,
            FeedbackStatus::DeliveryCountExceeded
        );
    } else {
        // MQTT can only complete, which the application can check before settling uses the
        // message up
        assert!(m.supports(Settlement::Complete));
        assert!(!m.supports(Settlement::Reject) && !m.supports(Settlement::Abandon));
        m.complete().await.unwrap();
        assert_eq!(outcome(&rejected).await, FeedbackStatus::Success);
        // a reject made anyway is refused without a word to the hub; the message it used up
        // is given up, and the hub delivers it again once its lock ends
        let sent = service
            .send("dev1", Message::new("reject me too").ack(Ack::Full))
            .await
            .unwrap();
        let m = recv(&device).await;
        assert_eq!(m.reject().await.unwrap_err().kind(), ErrorKind::Unsupported);
        h.clock.advance(Duration::from_secs(61));
        let again = recv(&device).await;
        assert_eq!(again.body(), b"reject me too");
        again.complete().await.unwrap();
        assert_eq!(outcome(&sent).await, FeedbackStatus::Success);
    }

    // TTL → Expired (the hub's clock runs past the message's expiry; no device involved)
    let short = service
        .send("nobody-listens", Message::new("x"))
        .await
        .unwrap_err();
    assert_eq!(short.kind(), ErrorKind::DeviceNotFound, "unknown device");
    service.registry().create_device("offline").await.unwrap();
    let expiring = service
        .send(
            "offline",
            Message::new("late")
                .ack(Ack::Negative)
                .ttl(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(outcome(&expiring).await, FeedbackStatus::Expired);

    // purge → Purged
    let purged = service
        .send("offline", Message::new("p").ack(Ack::Full))
        .await
        .unwrap();
    assert_eq!(
        service
            .purge("offline")
            .await
            .unwrap()
            .total_messages_purged,
        1
    );
    assert_eq!(outcome(&purged).await, FeedbackStatus::Purged);

    // queue full; too large
    for _ in 0..5 {
        service.send("offline", Message::new("fill")).await.unwrap();
    }
    assert_eq!(
        service
            .send("offline", Message::new("full"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::QueueFull
    );
    assert_eq!(
        service
            .send("dev1", Message::new(vec![0u8; 2000]))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::MessageTooLarge
    );

    // lock expiry → redelivery; settling the stale delivery is MessageLockLost
    service.send("dev1", Message::new("slow")).await.unwrap();
    let first = recv(&device).await;
    h.clock.advance(Duration::from_secs(61));
    let second = recv(&device).await;
    assert_eq!(second.body(), b"slow");
    second.complete().await.unwrap();
    if t == Transport::Https {
        // the hub ended the first lock: its token is refused (412)
        assert_eq!(
            first.complete().await.unwrap_err().kind(),
            ErrorKind::MessageLockLost
        );
    } else {
        drop(first);
    }

    // feedback(): every record, to every subscriber
    let all = service.feedback().unwrap();
    let sent = service
        .send("dev1", Message::new("watched").ack(Ack::Positive))
        .await
        .unwrap();
    recv(&device).await.complete().await.unwrap();
    let record = loop {
        let r = tokio::time::timeout(WAIT, all.recv())
            .await
            .unwrap()
            .unwrap();
        if r.original_message_id == sent.message_id() {
            break r;
        }
    };
    assert_eq!(record.status, FeedbackStatus::Success);

    // bad token; closed clients
    let bad = cs.replace("SharedAccessKey=", "SharedAccessKey=AAAA");
    assert_eq!(
        h.device(&bad, t).await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    device.close().await;
    assert!(matches!(device.recv().await, Ok(None)));
    service.close().await;
    assert_eq!(
        service
            .send("dev1", Message::new("x"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Closed
    );
    h.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt() {
    scenarios(Transport::Mqtt).await
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_over_websockets() {
    scenarios(Transport::MqttWs).await
}

#[tokio::test(flavor = "multi_thread")]
async fn amqp() {
    scenarios(Transport::Amqp).await
}

#[tokio::test(flavor = "multi_thread")]
async fn amqp_over_websockets() {
    scenarios(Transport::AmqpWs).await
}

#[tokio::test(flavor = "multi_thread")]
async fn https() {
    scenarios(Transport::Https).await
}
