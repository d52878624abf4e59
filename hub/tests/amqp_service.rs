//! The AMQP service endpoint with a real AMQP client (fe2o3-amqp): SASL, CBS, send outcomes
//! and the feedback link.

mod common;

use std::time::Duration;

use c2d::{Ack, FeedbackStatus, Message};
use common::*;
use fe2o3_amqp::types::messaging::message::Body;
use fe2o3_amqp::types::messaging::Outcome;
use fe2o3_amqp::types::primitives::Value;

fn condition(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Rejected(r) => format!("{:?}", r.error.as_ref().map(|e| &e.condition)),
        other => format!("not rejected: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_are_refused_with_iot_hub_conditions() {
    let th = hub_with(false, |c| {
        c.limits.max_queue_depth = 2;
        c.limits.max_message_size = 100;
    })
    .await;
    th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    let ghost = send(&mut sender, "ghost", &Message::new("x")).await;
    assert!(
        condition(&ghost).contains("NotFound"),
        "{}",
        condition(&ghost)
    );
    let big = send(&mut sender, "dev1", &Message::new(vec![b'x'; 101])).await;
    assert!(
        condition(&big).contains("MessageSizeExceeded"),
        "{}",
        condition(&big)
    );
    for _ in 0..2 {
        assert!(matches!(
            send(&mut sender, "dev1", &Message::new("ok")).await,
            Outcome::Accepted(_)
        ));
    }
    let full = send(&mut sender, "dev1", &Message::new("one too many")).await;
    assert!(
        condition(&full).contains("ResourceLimitExceeded"),
        "{}",
        condition(&full)
    );
    assert_eq!(th.hub.queue_depth("dev1"), 2);
    // a huge message is refused without the hub holding all of it
    let huge = send(
        &mut sender,
        "dev1",
        &Message::new(vec![b'y'; 2 * 1024 * 1024]),
    )
    .await;
    assert!(
        condition(&huge).contains("MessageSizeExceeded"),
        "{}",
        condition(&huge)
    );
    // no 'to'
    let mut m = amqp_message("dev1", &Message::new("x"));
    m.properties.as_mut().unwrap().to = Some("/devices/dev1/twin".into());
    let bad_to = sender.send(m).await.unwrap();
    assert!(
        condition(&bad_to).contains("InvalidField"),
        "{}",
        condition(&bad_to)
    );
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cbs_put_token_authorizes_a_connection_without_sasl() {
    let th = hub().await;
    th.device("dev1").await;
    let mut service = Service::connect_as(&th, Auth::Cbs(th.policy_token("service")))
        .await
        .unwrap();
    let mut sender = service.sender().await.unwrap();
    assert!(matches!(
        send(&mut sender, "dev1", &Message::new("via cbs")).await,
        Outcome::Accepted(_)
    ));
    service.close().await;

    // a token signed with the wrong key is refused by CBS (401)
    let forged = th.policy_token("service").replace("sig=", "sig=AAAA");
    let err = Service::connect_as(&th, Auth::Cbs(forged))
        .await
        .err()
        .expect("forged token refused");
    assert!(err.contains("put-token"), "{err}");

    // no token at all: the sender link is detached as unauthorized
    let mut anonymous = Service::connect_as(&th, Auth::None).await.unwrap();
    let refused = match anonymous.sender().await {
        Err(e) => e,
        Ok(mut s) => format!(
            "{:?}",
            s.send(amqp_message("dev1", &Message::new("x"))).await
        ),
    };
    assert!(refused.to_lowercase().contains("unauthorized"), "{refused}");
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn device_and_read_only_tokens_cannot_use_service_endpoints() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    for token in [device_token(&dev), th.policy_token("registryRead")] {
        let mut s = Service::connect_as(&th, Auth::Cbs(token)).await.unwrap();
        let refused = match s.feedback_receiver().await {
            Err(e) => e,
            Ok(mut r) => format!("{:?}", r.recv::<Body<Value>>().await),
        };
        assert!(refused.to_lowercase().contains("unauthorized"), "{refused}");
    }
    // SASL PLAIN with a bad token fails the connection
    let forged = th.policy_token("service").replace("sig=", "sig=AAAA");
    assert!(Service::connect_as(&th, Auth::Plain(forged)).await.is_err());
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_messages_look_like_iot_hubs_and_settle_like_messages() {
    let th = hub_with(true, |_| {}).await;
    th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    let mut feedback = service.feedback_receiver().await.unwrap();
    let mut m = Message::new("short-lived")
        .message_id("exp-1")
        .ack(Ack::Negative);
    m.expiry_time =
        Some(c2d_hub::Clock::now(th.clock.as_ref().unwrap().as_ref()) + Duration::from_secs(30));
    send(&mut sender, "dev1", &m).await;
    th.advance(Duration::from_secs(31)); // no device ever connected

    let delivery = tokio::time::timeout(WAIT, feedback.recv::<Body<Value>>())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        delivery.delivery_tag().len(),
        16,
        "the lock token is a 16-byte GUID"
    );
    let msg = delivery.message();
    let props = msg.properties.as_ref().unwrap();
    assert_eq!(
        props.content_type.as_ref().unwrap().0,
        "application/vnd.microsoft.iothub.feedback.json"
    );
    assert_eq!(props.user_id.as_ref().unwrap().as_ref(), b"localhost");
    let annotations = msg.message_annotations.as_ref().unwrap();
    assert!(format!("{annotations:?}").contains("iothub-enqueuedtime"));
    let records = feedback_records(&delivery);
    assert_eq!(records[0].original_message_id, "exp-1");
    assert_eq!(records[0].status, FeedbackStatus::Expired);
    // released: the same batch comes back; then accepted removes it
    feedback.release(&delivery).await.unwrap();
    let again = next_feedback(&mut feedback).await;
    assert_eq!(again, records);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), feedback.recv::<Body<Value>>())
            .await
            .is_err()
    );
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_over_rest_gives_purged_feedback() {
    let th = hub().await;
    th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    let mut feedback = service.feedback_receiver().await.unwrap();
    for i in 0..3 {
        send(
            &mut sender,
            "dev1",
            &Message::new("p").message_id(format!("p{i}")).ack(Ack::Full),
        )
        .await;
    }
    let purged = th.registry("service").purge_queue("dev1").await.unwrap();
    assert_eq!(purged.total_messages_purged, 3);
    assert_eq!(purged.device_id, "dev1");
    let mut statuses = Vec::new();
    while statuses.len() < 3 {
        statuses.extend(
            next_feedback(&mut feedback)
                .await
                .into_iter()
                .map(|r| (r.original_message_id, r.status)),
        );
    }
    assert_eq!(
        statuses,
        (0..3)
            .map(|i| (format!("p{i}"), FeedbackStatus::Purged))
            .collect::<Vec<_>>()
    );
    let err = th
        .registry("service")
        .purge_queue("ghost")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), c2d::ErrorKind::DeviceNotFound);
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_messages_and_feedback_survive_a_restart() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    for i in 0..3 {
        send(
            &mut sender,
            "dev1",
            &Message::new(format!("keep{i}"))
                .message_id(format!("k{i}"))
                .ack(Ack::Positive),
        )
        .await;
    }
    // one delivered but not acknowledged when the hub stops
    let mut device = Device::connect(&th, &dev, false, true).await;
    let first = device.next().await;
    assert_eq!(&first.payload[..], b"keep0");
    device.kill();
    service.close().await;

    let th = th.restart(|_| {}).await;
    assert_eq!(th.hub.queue_depth("dev1"), 3);
    let mut device = Device::connect(&th, &dev, false, true).await;
    for i in 0..3 {
        let p = device.next().await;
        assert_eq!(p.payload, format!("keep{i}").as_bytes());
        device.client.ack(&p).await.unwrap();
    }
    let mut service = Service::connect(&th).await;
    let mut feedback = service.feedback_receiver().await.unwrap();
    let mut ids = Vec::new();
    while ids.len() < 3 {
        ids.extend(
            next_feedback(&mut feedback)
                .await
                .into_iter()
                .map(|r| r.original_message_id),
        );
    }
    ids.sort();
    assert_eq!(ids, ["k0", "k1", "k2"]);
    device.disconnect().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_whose_token_expires_is_closed() {
    let th = hub_with(true, |_| {}).await;
    th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    assert!(matches!(
        send(&mut sender, "dev1", &Message::new("before")).await,
        Outcome::Accepted(_)
    ));
    th.advance(Duration::from_secs(3600 + 301));
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match sender
                .send(amqp_message("dev1", &Message::new("after")))
                .await
            {
                Ok(Outcome::Accepted(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return format!("{other:?}"),
            }
        }
    })
    .await
    .expect("the hub closes the connection within its 5 s check");
    assert!(!closed.is_empty());
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_anonymous_then_cbs_works_as_java_does_it() {
    use fe2o3_amqp::sasl_profile::SaslProfile;
    let th = hub().await;
    th.device("dev1").await;
    let stream = tls(&th.hub, th.hub.amqp_port()).await;
    let mut conn = fe2o3_amqp::Connection::builder()
        .container_id("c2d-test")
        .hostname("localhost")
        .sasl_profile(SaslProfile::Anonymous)
        .open_with_stream(stream)
        .await
        .unwrap();
    let mut session = fe2o3_amqp::Session::begin(&mut conn).await.unwrap();
    put_token(&mut session, &th.policy_token("service"))
        .await
        .unwrap();
    let mut service = Service { conn, session };
    let mut sender = service.sender().await.unwrap();
    assert!(matches!(
        send(&mut sender, "dev1", &Message::new("anonymous")).await,
        Outcome::Accepted(_)
    ));
    service.close().await;
    th.hub.stop().await;
}
