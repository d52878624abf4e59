//! The AMQP device endpoint with a real AMQP client (fe2o3-amqp): receive, complete, reject,
//! abandon, settle modes, lock expiry and a replaced receiving link.

mod common;

use std::time::Duration;

use c2d::{Ack, FeedbackStatus, Message};
use common::*;
use fe2o3_amqp::link::receiver::CreditMode;
use fe2o3_amqp::types::definitions::ReceiverSettleMode;
use fe2o3_amqp::types::messaging::message::Body;
use fe2o3_amqp::types::primitives::Value;
use fe2o3_amqp::Receiver;

type Delivery = fe2o3_amqp::link::delivery::Delivery<Body<Value>>;

async fn device_receiver(
    service: &mut Service,
    address: &str,
    mode: ReceiverSettleMode,
) -> Result<Receiver, String> {
    Receiver::builder()
        .name(format!("c2d-rcv-{}", uuid::Uuid::new_v4()))
        .source(address)
        .target("c2d-test")
        .receiver_settle_mode(mode)
        .credit_mode(CreditMode::Auto(10))
        .attach(&mut service.session)
        .await
        .map_err(|e| format!("{e:?}"))
}

async fn next(r: &mut Receiver) -> Delivery {
    tokio::time::timeout(WAIT, r.recv::<Body<Value>>())
        .await
        .expect("no delivery within 10 s")
        .unwrap()
}

fn body(d: &Delivery) -> Vec<u8> {
    match d.body() {
        Body::Data(sections) => sections.iter().flat_map(|x| x.0.iter().copied()).collect(),
        other => panic!("the body is not data: {other:?}"),
    }
}

/// A device connection over AMQP authenticated by a CBS put-token with the device's key.
async fn device(th: &TestHub, device_cs: &str) -> Service {
    Service::connect_as(th, Auth::Cbs(device_token(device_cs)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_reject_and_abandon_over_amqp() {
    let th = hub_with(false, |c| c.limits.max_delivery_count = 2).await;
    let dev = th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    let mut feedback = service.feedback_receiver().await.unwrap();
    for id in ["complete", "reject", "abandon"] {
        send(
            &mut sender,
            "dev1",
            &Message::new(id)
                .message_id(id)
                .ack(Ack::Full)
                .property("k", "v"),
        )
        .await;
    }
    let mut d = device(&th, &dev).await;
    let mut r = device_receiver(
        &mut d,
        "/devices/dev1/messages/devicebound",
        ReceiverSettleMode::First,
    )
    .await
    .unwrap();

    let first = next(&mut r).await;
    assert_eq!(body(&first), b"complete");
    assert_eq!(
        first.delivery_tag().len(),
        16,
        "the lock token is a 16-byte GUID"
    );
    let m = first.message();
    let props = m.properties.as_ref().unwrap();
    assert_eq!(
        props.to.as_deref(),
        Some("/devices/dev1/messages/devicebound")
    );
    let app = &m.application_properties.as_ref().unwrap().0;
    assert!(format!("{app:?}").contains("iothub-ack"));
    let annotations = format!("{:?}", m.message_annotations.as_ref().unwrap());
    for key in [
        "iothub-enqueuedtime",
        "iothub-deliverycount",
        "x-opt-sequence-number",
    ] {
        assert!(
            annotations.contains(key),
            "{key} missing from {annotations}"
        );
    }
    r.accept(&first).await.unwrap();
    let second = next(&mut r).await;
    assert_eq!(body(&second), b"reject");
    r.reject(&second, None).await.unwrap();
    let third = next(&mut r).await;
    assert_eq!(body(&third), b"abandon");
    r.release(&third).await.unwrap();
    let again = next(&mut r).await;
    assert_eq!(
        body(&again),
        b"abandon",
        "an abandoned message is delivered again"
    );
    assert_eq!(again.message().header.as_ref().unwrap().delivery_count, 1);
    r.release(&again).await.unwrap(); // the second abandon reaches max delivery count 2

    let mut outcomes = Vec::new();
    while outcomes.len() < 3 {
        outcomes.extend(
            next_feedback(&mut feedback)
                .await
                .into_iter()
                .map(|r| (r.original_message_id, r.status)),
        );
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        outcomes,
        vec![
            ("abandon".into(), FeedbackStatus::DeliveryCountExceeded),
            ("complete".into(), FeedbackStatus::Success),
            ("reject".into(), FeedbackStatus::Rejected),
        ]
    );
    assert_eq!(th.hub.queue_depth("dev1"), 0);
    d.close().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settle_mode_second_is_answered_and_stale_locks_are_refused() {
    use common::raw_amqp::RawClient;
    use fe2o3_amqp::types::messaging::{Accepted, DeliveryState, Released};
    use fe2o3_amqp::types::performatives::Performative;

    let th = hub_with(true, |_| {}).await;
    let dev = th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    for id in ["a", "b"] {
        send(&mut sender, "dev1", &Message::new(id).message_id(id)).await;
    }
    // C#'s way: settle mode second, and the absolute address with port and a capital B
    let mut raw = RawClient::connect(&th, "dev1@sas.localhost", &device_token(&dev)).await;
    let address = format!(
        "amqps://localhost:{}/devices/dev1/messages/deviceBound",
        th.hub.amqp_port()
    );
    let attach = raw
        .attach_receiver(&address, ReceiverSettleMode::Second, 2)
        .await;
    assert_eq!(attach.rcv_settle_mode, ReceiverSettleMode::Second);
    assert_eq!(
        attach.source.as_ref().unwrap().address.as_deref(),
        Some(address.as_str()),
        "the source is echoed"
    );
    let mut ids = Vec::new();
    while ids.len() < 2 {
        if let Performative::Transfer(t) = raw.recv().await {
            assert_eq!(t.delivery_tag.as_ref().map(|t| t.len()), Some(16));
            assert_eq!(t.settled, Some(false));
            ids.push(t.delivery_id.unwrap());
        }
    }
    // an unsettled `accepted` is answered with a settled `accepted` once applied
    raw.dispose(ids[0], false, DeliveryState::Accepted(Accepted {}))
        .await;
    let Performative::Disposition(d) = raw.recv().await else {
        panic!("expected the hub's disposition")
    };
    assert_eq!((d.first, d.settled), (ids[0], true));
    assert!(matches!(d.state, Some(DeliveryState::Accepted(_))), "{d:?}");
    // after b's lock expired, settling it is refused with message-lock-lost
    th.advance(Duration::from_secs(61));
    raw.dispose(ids[1], false, DeliveryState::Released(Released {}))
        .await;
    let d = loop {
        if let Performative::Disposition(d) = raw.recv().await {
            break d;
        }
    };
    assert_eq!(d.first, ids[1]);
    assert!(
        format!("{:?}", d.state).contains("message-lock-lost"),
        "{d:?}"
    );
    assert_eq!(
        th.hub.queue_depth("dev1"),
        1,
        "b is back in the queue, a is completed"
    );
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_receiving_link_replaces_the_old_and_gets_its_messages() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(&mut sender, "dev1", &Message::new("held")).await;
    let mut d1 = device(&th, &dev).await;
    let mut old = device_receiver(
        &mut d1,
        "/devices/dev1/messages/devicebound",
        ReceiverSettleMode::First,
    )
    .await
    .unwrap();
    let held = next(&mut old).await;
    assert_eq!(body(&held), b"held");
    let mut d2 = device(&th, &dev).await;
    let mut new = device_receiver(
        &mut d2,
        "/devices/dev1/messages/devicebound",
        ReceiverSettleMode::First,
    )
    .await
    .unwrap();
    // the old link is detached as stolen, and its locked message goes to the new one
    let err = tokio::time::timeout(WAIT, old.recv::<Body<Value>>())
        .await
        .expect("old link detached");
    assert!(
        format!("{err:?}").to_lowercase().contains("stolen"),
        "{err:?}"
    );
    let again = next(&mut new).await;
    assert_eq!(body(&again), b"held");
    new.accept(&again).await.unwrap();
    d2.close().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_token_reaches_only_its_own_queue() {
    let th = hub().await;
    let dev1 = th.device("dev1").await;
    th.device("dev2").await;
    let mut d = device(&th, &dev1).await;
    let refused = match device_receiver(
        &mut d,
        "/devices/dev2/messages/devicebound",
        ReceiverSettleMode::First,
    )
    .await
    {
        Err(e) => e,
        Ok(mut r) => format!("{:?}", r.recv::<Body<Value>>().await),
    };
    assert!(refused.to_lowercase().contains("unauthorized"), "{refused}");
    // a policy with DeviceConnect may act for any device
    let mut p = Service::connect_as(&th, Auth::Cbs(th.policy_token("device")))
        .await
        .unwrap();
    assert!(device_receiver(
        &mut p,
        "/devices/dev2/messages/devicebound",
        ReceiverSettleMode::First
    )
    .await
    .is_ok());
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_puts_its_locked_messages_back() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(&mut sender, "dev1", &Message::new("again")).await;
    let mut d = device(&th, &dev).await;
    let mut r = device_receiver(
        &mut d,
        "/devices/dev1/messages/devicebound",
        ReceiverSettleMode::First,
    )
    .await
    .unwrap();
    let first = next(&mut r).await;
    drop(r);
    drop(d); // no detach, no close
    let mut d = device(&th, &dev).await;
    let mut r = device_receiver(
        &mut d,
        "/devices/dev1/messages/devicebound",
        ReceiverSettleMode::First,
    )
    .await
    .unwrap();
    let second = next(&mut r).await;
    assert_eq!(body(&second), body(&first));
    assert_eq!(
        second.message().header.as_ref().unwrap().delivery_count,
        0,
        "a lost connection is not an abandon"
    );
    r.accept(&second).await.unwrap();
    th.hub.stop().await;
}
