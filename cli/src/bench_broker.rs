//! `c2d bench --broker`: the same workload shape against a plain MQTT broker (Mosquitto, say),
//! with rumqttc on both sides, to put c2d's figures next to a broker's on the same machine.
//!
//! One QoS 1 subscriber per device (a persistent session on `devices/bench-N/messages/
//! devicebound/#`, acknowledging each message as it arrives) and one QoS 1 publisher with
//! `--in-flight` publishes awaiting their PUBACK: the broker's PUBACK plays the hub's
//! `accepted`, the subscriber's PUBACK the device's completion.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration};
use serde_json::json;

use super::{now_us, percentile, BenchArgs};

/// `host:port` and, for TLS, the CA to trust.
fn options(id: &str, broker: &str, ca: Option<&[u8]>, in_flight: u16) -> Result<MqttOptions> {
    let (host, port) = broker
        .rsplit_once(':')
        .context("--broker must be HOST:PORT")?;
    let port: u16 = port.parse().context("--broker must be HOST:PORT")?;
    let mut o = MqttOptions::new(id, host, port);
    o.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(in_flight)
        .set_max_packet_size(1 << 20, 1 << 20);
    if let Some(ca) = ca {
        let tls = c2d::tls::client_config_trusting(ca)?;
        o.set_transport(rumqttc::Transport::tls_with_config(
            TlsConfiguration::Rustls(tls),
        ));
    }
    Ok(o)
}

pub async fn run(a: &BenchArgs, broker: &str) -> Result<()> {
    let ca = super::ca_file(a)?;
    let n = a.devices;
    let per_device = super::shares(a.messages, n);
    let received = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.messages)));
    let connect_start = Instant::now();

    // the subscribers: connect, subscribe, then count (rumqttc sends each PUBACK)
    let mut subscribers = Vec::new();
    for (i, want) in per_device.iter().copied().enumerate() {
        let id = format!("bench-{i}");
        let o = options(&id, broker, ca.as_deref(), a.device_in_flight)?;
        let (client, mut events) = AsyncClient::new(o, 1024);
        client
            .subscribe(
                format!("devices/{id}/messages/devicebound/#"),
                QoS::AtLeastOnce,
            )
            .await?;
        // wait for the SUBACK so that nothing is published before the subscription holds
        loop {
            match events
                .poll()
                .await
                .with_context(|| format!("{id}: connecting"))?
            {
                Event::Incoming(Packet::SubAck(_)) => break,
                Event::Incoming(Packet::ConnAck(c))
                    if c.code != rumqttc::ConnectReturnCode::Success =>
                {
                    bail!("{id}: the broker refused the connection ({:?})", c.code)
                }
                _ => {}
            }
        }
        let (received, latencies) = (received.clone(), latencies.clone());
        subscribers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(want);
            while mine.len() < want {
                match events.poll().await? {
                    Event::Incoming(Packet::Publish(p)) => {
                        let sent = p
                            .payload
                            .get(..8)
                            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
                            .unwrap_or(0);
                        mine.push(now_us().saturating_sub(sent));
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => continue,
                }
            }
            // let the last PUBACK go out before the client is dropped
            let _ = client.disconnect().await;
            while let Ok(e) = events.poll().await {
                if matches!(e, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
            latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(mine);
            Ok::<_, anyhow::Error>(Instant::now())
        }));
    }
    let connect_time = connect_start.elapsed();

    // the publisher: rumqttc keeps --in-flight QoS 1 publishes awaiting their PUBACK
    let o = options(
        "bench-publisher",
        broker,
        ca.as_deref(),
        a.in_flight.min(u16::MAX as usize) as u16,
    )?;
    let (publisher, mut events) = AsyncClient::new(o, a.in_flight.max(16));
    let start = Instant::now();
    let total = a.messages;
    let acked = Arc::new(AtomicUsize::new(0));
    let acks = {
        let acked = acked.clone();
        tokio::spawn(async move {
            while acked.load(Ordering::Relaxed) < total {
                if let Event::Incoming(Packet::PubAck(_)) = events.poll().await? {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            // the event loop must keep running for the DISCONNECT to go out
            tokio::spawn(async move { while events.poll().await.is_ok() {} });
            Ok::<_, anyhow::Error>(Instant::now())
        })
    };
    let progress = super::progress(received.clone(), acked.clone(), total);
    let mut body = vec![b'x'; a.size.max(8)];
    for i in 0..total {
        body[..8].copy_from_slice(&now_us().to_be_bytes());
        let topic = format!("devices/bench-{}/messages/devicebound/", i % n);
        publisher
            .publish(topic, QoS::AtLeastOnce, false, body.clone())
            .await?;
    }
    let acked_at = acks.await??;
    let mut last = start;
    for s in subscribers {
        last = last.max(s.await??);
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let _ = publisher.disconnect().await;

    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort_unstable();
    let secs = |t: Instant| t.duration_since(start).as_secs_f64();
    let result = json!({
        "broker": broker,
        "tls": ca.is_some(),
        "devices": n,
        "messages": total,
        "size": a.size,
        "in_flight": a.in_flight,
        "connect_seconds": connect_time.as_secs_f64(),
        "messages_per_second": total as f64 / secs(last),
        "sends_per_second": total as f64 / secs(acked_at),
        "latency_ms": {
            "p50": percentile(&lat, 0.50),
            "p90": percentile(&lat, 0.90),
            "p99": percentile(&lat, 0.99),
            "max": percentile(&lat, 1.0),
        },
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "c2d bench --broker {broker}: {n} QoS 1 subscribers, {total} messages of {} B, {} publishes in flight{}",
        a.size,
        a.in_flight,
        if ca.is_some() { ", TLS" } else { "" }
    );
    println!(
        "  end to end (received)    {:>10.0} msg/s",
        result["messages_per_second"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  publishes acknowledged   {:>10.0} msg/s",
        result["sends_per_second"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  publish -> receipt       p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    Ok(())
}
