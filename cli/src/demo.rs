//! `c2d demo`: the whole of C2D messaging on one machine, in a few seconds. An embedded hub
//! on free ports in a temporary directory; a device; messages with `ack=full` received over
//! MQTT and over AMQP and completed, rejected and abandoned; each message's outcome as the
//! hub reports it.

use std::time::Duration;

use anyhow::{Context, Result};
use c2d::{Ack, DeviceClient, Message, ServiceClient, Transport};
use c2d_hub::{HubConfig, LocalHub};

async fn device(hub: &LocalHub, cs: &str, transport: Transport) -> Result<DeviceClient> {
    let port = match transport {
        Transport::Mqtt => hub.mqtt_port(),
        Transport::Amqp => hub.amqp_port(),
        Transport::MqttWs | Transport::AmqpWs | Transport::Https => hub.https_port(),
    };
    Ok(DeviceClient::builder(cs)?
        .transport(transport)
        .trusted_ca_pem(hub.ca_pem())
        .port(port)
        .connect()
        .await?)
}

async fn next(d: &DeviceClient) -> Result<c2d::ReceivedMessage> {
    tokio::time::timeout(Duration::from_secs(30), d.recv())
        .await
        .context("no message within 30 s")??
        .context("the device client closed")
}

fn show(step: &str, m: &c2d::ReceivedMessage) {
    let props: Vec<String> = m
        .message()
        .properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "  device  {step:<9} {:<24} body={:?} deliveryCount={} {}",
        m.message()
            .message_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        String::from_utf8_lossy(m.body()),
        m.delivery_count(),
        props.join(" ")
    );
}

pub async fn run() -> Result<()> {
    let dir = tempfile::tempdir().context("making a temporary directory")?;
    let mut config = HubConfig::ephemeral(dir.path());
    config.limits.feedback_interval = Duration::ZERO; // feedback at once, for the demo
    let hub = LocalHub::start(config)
        .await
        .context("starting the embedded hub")?;
    println!(
        "hub      {} on 127.0.0.1 (MQTT {}, AMQP {}, HTTPS {}), data in {}",
        hub.host_name(),
        hub.mqtt_port(),
        hub.amqp_port(),
        hub.https_port(),
        dir.path().display()
    );
    let service = ServiceClient::builder(&hub.owner_connection_string())?
        .trusted_ca_pem(hub.ca_pem())
        .port(hub.amqp_port())
        .https_port(hub.https_port())
        .connect()
        .await?;
    let registered = service.registry().create_device("demo-device").await?;
    let cs = registered
        .connection_string(hub.host_name())
        .context("the device has no key")?;
    println!("registry created demo-device");

    // Each message's own outcome, printed as it arrives.
    let mut waiters = Vec::new();
    let send = |body: &str, action: &str| {
        let m = Message::new(body.to_string())
            .ack(Ack::Full)
            .property("action", action);
        let service = service.clone();
        let label = format!("{body} ({action})");
        async move {
            let sent = service.send("demo-device", m).await?;
            println!("service sent      {:<24} {label}", sent.message_id());
            Ok::<_, c2d::Error>(sent)
        }
    };
    let mut outcomes = |sent: c2d::SentMessage| {
        waiters.push(tokio::spawn(async move {
            let r = sent.outcome().await?;
            println!(
                "service feedback  {:<24} {}",
                r.original_message_id, r.status
            );
            Ok::<_, c2d::Error>(r.status)
        }));
    };

    println!("-- over MQTT (complete only: MQTT cannot reject or abandon)");
    let mqtt = device(&hub, &cs, Transport::Mqtt).await?;
    for body in ["hello over MQTT", "and again"] {
        outcomes(send(body, "complete").await?);
        let m = next(&mqtt).await?;
        show("received", &m);
        m.complete().await?;
    }
    mqtt.close().await;

    println!("-- over AMQP (complete, reject, abandon)");
    let amqp = device(&hub, &cs, Transport::Amqp).await?;
    for (body, action) in [
        ("turn on", "complete"),
        ("bad command", "reject"),
        ("busy now", "abandon"),
    ] {
        outcomes(send(body, action).await?);
    }
    let mut abandoned_once = false;
    let mut settled = 0;
    while settled < 3 {
        let m = next(&amqp).await?;
        show("received", &m);
        match m.message().get_property("action") {
            Some("reject") => {
                m.reject().await?;
                settled += 1;
            }
            Some("abandon") if !abandoned_once => {
                abandoned_once = true;
                m.abandon().await?; // comes back with deliveryCount=1
            }
            _ => {
                m.complete().await?;
                settled += 1;
            }
        }
    }
    amqp.close().await;

    let mut statuses = Vec::new();
    for w in waiters {
        statuses.push(
            tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .context("feedback did not arrive")???,
        );
    }
    service.close().await;
    hub.stop().await;
    println!("done: {} messages, outcomes {:?}", statuses.len(), statuses);
    Ok(())
}
