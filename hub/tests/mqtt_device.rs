//! The MQTT device endpoint with a real MQTT client (rumqttc) and messages sent by a real
//! AMQP service client, against a hub on ephemeral ports.

mod common;

use std::time::Duration;

use c2d::{Ack, FeedbackStatus, Message};
use common::*;
use fe2o3_amqp::types::messaging::Outcome;
use rumqttc::ConnectReturnCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn complete_over_mqtt_gives_one_success_record_with_iot_hub_topic() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut device = Device::connect(&th, &dev, false, true).await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    let mut feedback = service.feedback_receiver().await.unwrap();
    let m = Message::new("hello")
        .message_id("m-1")
        .ack(Ack::Full)
        .property("a b", "c/d")
        .property("x", "1+1");
    assert!(matches!(
        send(&mut sender, "dev1", &m).await,
        Outcome::Accepted(_)
    ));

    let p = device.next().await;
    assert_eq!(&p.payload[..], b"hello");
    assert!(p.topic.starts_with("devices/dev1/messages/devicebound/"));
    let bag = bag(&p.topic);
    let get = |k: &str| {
        bag.iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.clone())
    };
    assert_eq!(get("$.mid").as_deref(), Some("m-1"));
    assert_eq!(
        get("$.to").as_deref(),
        Some("/devices/dev1/messages/devicebound")
    );
    assert_eq!(get("iothub-ack").as_deref(), Some("full"));
    assert_eq!(get("a b").as_deref(), Some("c/d"));
    assert_eq!(get("x").as_deref(), Some("1+1"));
    assert!(
        !p.topic.contains('+') || p.topic.contains("%2B"),
        "no '+' for spaces: {}",
        p.topic
    );
    device.client.ack(&p).await.unwrap();

    let records = next_feedback(&mut feedback).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].original_message_id, "m-1");
    assert_eq!(records[0].device_id, "dev1");
    assert_eq!(records[0].status, FeedbackStatus::Success);
    assert_eq!(records[0].description, "Success");
    tokio::time::timeout(Duration::from_secs(5), async {
        while th.hub.queue_depth("dev1") != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the PUBACK completes the message");
    device.disconnect().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_queued_before_the_device_connects_are_delivered_in_order() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    for i in 0..5 {
        let m = Message::new(format!("m{i}")).message_id(format!("id{i}"));
        assert!(matches!(
            send(&mut sender, "dev1", &m).await,
            Outcome::Accepted(_)
        ));
    }
    let mut device = Device::connect(&th, &dev, true, true).await;
    for i in 0..5 {
        let p = device.next().await;
        assert_eq!(p.payload, format!("m{i}").as_bytes());
        device.client.ack(&p).await.unwrap();
    }
    device.disconnect().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unacknowledged_messages_come_back_after_reconnect_with_the_session() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut device = Device::connect(&th, &dev, false, true).await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(&mut sender, "dev1", &Message::new("once").message_id("r1")).await;
    let p = device.next().await;
    assert_eq!(&p.payload[..], b"once");
    device.kill(); // no PUBACK, no DISCONNECT
    tokio::time::sleep(Duration::from_millis(200)).await;

    // CleanSession=0: the subscription was kept, delivery starts right after CONNACK
    let mut again = Device::connect(&th, &dev, false, false).await;
    let ack = tokio::time::timeout(WAIT, again.connacks.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(ack.session_present);
    let p = again.next().await;
    assert_eq!(&p.payload[..], b"once");
    again.client.ack(&p).await.unwrap();
    again.disconnect().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_session_forgets_the_subscription() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let first = Device::connect(&th, &dev, true, true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.disconnect().await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(&mut sender, "dev1", &Message::new("later")).await;
    let mut device = Device::connect(&th, &dev, true, false).await;
    let ack = tokio::time::timeout(WAIT, device.connacks.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!ack.session_present);
    device.nothing_for(Duration::from_millis(500)).await;
    device
        .client
        .subscribe(
            "devices/dev1/messages/devicebound/#",
            rumqttc::QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    let p = device.next().await;
    assert_eq!(&p.payload[..], b"later");
    device.client.ack(&p).await.unwrap();
    device.disconnect().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_expiry_delivers_again_and_late_pubacks_are_harmless() {
    let th = hub_with(true, |_| {}).await;
    let dev = th.device("dev1").await;
    let mut device = Device::connect(&th, &dev, false, true).await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    let mut feedback = service.feedback_receiver().await.unwrap();
    send(
        &mut sender,
        "dev1",
        &Message::new("slow").message_id("L").ack(Ack::Full),
    )
    .await;
    let first = device.next().await;
    th.advance(Duration::from_secs(61));
    let second = device.next().await;
    assert_eq!(second.payload, first.payload);
    assert_ne!(second.pkid, first.pkid);
    device.client.ack(&first).await.unwrap(); // lock lost: ignored
    device.client.ack(&second).await.unwrap();
    let records = next_feedback(&mut feedback).await;
    assert_eq!(
        records.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![FeedbackStatus::Success]
    );
    device.disconnect().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_connection_replaces_the_old_one() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut old = Device::connect(&th, &dev, false, true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut new = Device::connect(&th, &dev, false, true).await;
    let err = old.error().await;
    assert!(!err.is_empty());
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(&mut sender, "dev1", &Message::new("to the new one")).await;
    let p = new.next().await;
    assert_eq!(&p.payload[..], b"to the new one");
    new.client.ack(&p).await.unwrap();
    new.disconnect().await;
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_get_connack_5() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let other = th.device("dev2").await;
    // dev2's token presented as dev1
    let mut o = mqtt_options(&th, &dev, true);
    o.set_credentials(
        "localhost/dev1/?api-version=2021-04-12",
        device_token(&other),
    );
    let mut d = Device::connect_with(o, &dev, false).await;
    let err = d.error().await;
    assert!(
        err.contains(&format!("{:?}", ConnectReturnCode::NotAuthorized)),
        "{err}"
    );
    // an unknown device
    let mut o = mqtt_options(&th, &dev, true);
    o.set_client_id("ghost".into());
    o.set_credentials(
        "localhost/ghost/?api-version=2021-04-12",
        device_token(&dev),
    );
    let mut d = Device::connect_with(o, &dev, false).await;
    assert!(d.error().await.contains("NotAuthorized"));
    th.hub.stop().await;
}

/// A raw CONNECT: MQTT `level`, client id `dev1`, keep-alive `keep_alive` s, with credentials.
fn raw_connect(level: u8, keep_alive: u16, user: &str, pass: &str) -> Vec<u8> {
    let mut var = Vec::new();
    var.extend_from_slice(&[0, 4]);
    var.extend_from_slice(b"MQTT");
    var.push(level);
    var.push(0b1100_0000); // user name, password, clean session 0
    var.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        var.push(0); // no properties
    }
    for s in ["dev1", user, pass] {
        var.extend_from_slice(&(s.len() as u16).to_be_bytes());
        var.extend_from_slice(s.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut len = var.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&var);
    packet
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_5_is_refused_and_silent_clients_time_out() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let token = device_token(&dev);
    let mut s = tls(&th.hub, th.hub.mqtt_port()).await;
    s.write_all(&raw_connect(5, 60, "localhost/dev1/", &token))
        .await
        .unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).await.unwrap();
    assert_eq!(
        connack,
        [0x20, 2, 0, 1],
        "CONNACK 1: unacceptable protocol version"
    );

    let mut s = tls(&th.hub, th.hub.mqtt_port()).await;
    s.write_all(&raw_connect(4, 1, "localhost/dev1/", &token))
        .await
        .unwrap();
    s.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    // no PINGREQ: the hub closes after 1.5 × keep-alive
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the hub should close an idle connection");
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qos_2_publishes_and_foreign_subscriptions_are_refused() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let mut device = Device::connect(&th, &dev, true, false).await;
    device
        .client
        .subscribe(
            "devices/dev2/messages/devicebound/#",
            rumqttc::QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    device
        .client
        .publish(
            "devices/dev1/messages/events/",
            rumqttc::QoS::ExactlyOnce,
            false,
            "x",
        )
        .await
        .unwrap();
    let err = device.error().await;
    assert!(!err.is_empty());
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_whose_token_expires_is_disconnected() {
    let th = hub_with(true, |_| {}).await;
    let dev = th.device("dev1").await;
    let mut device = Device::connect(&th, &dev, false, true).await;
    tokio::time::timeout(WAIT, device.connacks.recv())
        .await
        .unwrap()
        .unwrap();
    // the token is valid for an hour; the hub allows five more minutes of skew
    th.advance(Duration::from_secs(3600 + 301));
    let err = device.error().await;
    assert!(!err.is_empty());
    th.hub.stop().await;
}
