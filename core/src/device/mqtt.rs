//! The MQTT connection task: subscribe to the device's C2D topic, hand each PUBLISH to the
//! application, and send PUBACKs only when the application completes, in arrival order.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, Publish, QoS,
    TlsConfiguration,
};

use super::{answer, Command, Delivered, Link, LOCK};
use crate::error::{Error, ErrorKind, Result};

/// Why the connection ends when its token is due for renewal (a new CONNECT carries the
/// new token; the session and its messages stay at the hub).
const RENEWING: &str = "renewing the SAS token";

/// A PUBLISH waiting for its PUBACK.
struct Pending {
    id: u64,
    publish: Publish,
    /// Completed by the application: its PUBACK goes out once those before it did.
    completed: bool,
    /// Given up (dropped unsettled): no PUBACK; the hub delivers it again when its lock
    /// ends.
    given_up: bool,
    received: tokio::time::Instant,
}

/// The options of one connection, and when its token must be renewed (never for X.509).
fn options(link: &Link) -> Result<(MqttOptions, Option<SystemTime>)> {
    let c = &link.config;
    let token = c.token()?;
    let port = c.port_or_default();
    let websocket = c.options.transport == super::Transport::MqttWs;
    let broker = if websocket {
        format!("wss://{}:{port}/$iothub/websocket", c.connect_host)
    } else {
        c.connect_host.clone()
    };
    let mut o = MqttOptions::new(&c.device_id, broker, port);
    let user = format!(
        "{}/{}/?api-version=2021-04-12&DeviceClientType={}",
        c.host_name,
        c.device_id,
        crate::sas::url_encode(concat!("c2d/", env!("CARGO_PKG_VERSION")))
    );
    // an X.509 device sends no password: its certificate is its credential
    let (password, expiry) = token.map_or((String::new(), None), |(t, e)| (t, Some(e)));
    o.set_credentials(user, password);
    o.set_clean_session(false);
    o.set_manual_acks(true);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(256 * 1024, 256 * 1024);
    let tls = TlsConfiguration::Rustls(link.tls.clone());
    if let (true, Some(proxy)) = (websocket, &c.options.connection.proxy) {
        o.set_proxy(proxy.for_mqtt());
    }
    o.set_transport(if websocket {
        rumqttc::Transport::wss_with_config(tls)
    } else {
        rumqttc::Transport::tls_with_config(tls)
    });
    Ok((o, expiry))
}

/// The C2D message of a PUBLISH on `devices/{id}/messages/devicebound/{property bag}`: its
/// payload, and its properties from the bag. A bag that cannot be read gives the message
/// without properties (it is still handed over, and completed, to keep the queue moving).
pub(crate) fn message_of_publish(topic: &str, payload: Vec<u8>) -> crate::Message {
    let bag = topic.splitn(5, '/').nth(4).unwrap_or("");
    match crate::property_bag::to_message(Vec::new(), bag) {
        Ok(mut m) => {
            m.body = payload;
            m
        }
        Err(e) => {
            tracing::warn!(error = %e, %topic, "c2d device: unreadable C2D topic; the message is completed to keep the queue moving");
            crate::Message::new(payload)
        }
    }
}

fn connection_error(e: ConnectionError) -> Error {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword,
        ) => Error::new(
            ErrorKind::Unauthorized,
            "the hub refused the device's credentials (CONNACK 5)",
        ),
        ConnectionError::ConnectionRefused(code) => Error::new(
            ErrorKind::Unavailable,
            format!("the hub refused the connection: {code:?}"),
        ),
        // 407: the proxy wants other credentials; retrying will not change them
        ConnectionError::Proxy(e) if e.to_string().contains("407") => Error::new(
            ErrorKind::Unauthorized,
            format!("the proxy refused the credentials: {e}"),
        ),
        // the connection (TCP, TLS, CONNECT) or a write took longer than the client's timeout
        slow @ (ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout) => {
            Error::new(ErrorKind::Timeout, format!("MQTT: {slow}"))
        }
        other => Error::new(ErrorKind::Unavailable, format!("MQTT: {other}")),
    }
}

pub(super) async fn run(mut link: Link) {
    let topic = format!("devices/{}/messages/devicebound/#", link.config.device_id);
    let mut epoch = 0u64;
    let mut attempt = 0u32;
    loop {
        let (options, token_expiry) = match options(&link) {
            Ok(o) => o,
            Err(e) => {
                link.failed(
                    u32::MAX,
                    Error::new(ErrorKind::InvalidArgument, e.message()),
                );
                return;
            }
        };
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        epoch += 1;
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut next_id = 0u64;
        let renew_in = token_expiry.map(|expiry| {
            link.config
                .renew_at(expiry)
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let renew = tokio::time::sleep(renew_in.unwrap_or(Duration::ZERO));
        tokio::pin!(renew);
        let error: Error = loop {
            tokio::select! {
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        // messages may come before the SUBACK (a persistent session)
                        link.live(epoch);
                        if let Err(e) = client.subscribe(topic.clone(), QoS::AtLeastOnce).await {
                            break Error::new(ErrorKind::Unavailable, format!("subscribing: {e}"));
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) {
                            break Error::new(ErrorKind::Unauthorized, "the hub refused the C2D subscription");
                        }
                        attempt = 0;
                        link.connected();
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let message = message_of_publish(&p.topic, p.payload.to_vec());
                        next_id += 1;
                        pending.push_back(Pending { id: next_id, publish: p, completed: false, given_up: false, received: tokio::time::Instant::now() });
                        let d = Delivered { message, delivery_count: 0, enqueued_time: None, sequence_number: None, lock_token: None };
                        if !link.hand_over(epoch, next_id, d) {
                            return; // the client is gone
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break connection_error(e),
                },
                command = link.commands.recv() => match command {
                    // only completions come: ReceivedMessage::settle refuses the others
                    Some(Command::Settle { epoch: e, id, reply, .. }) => {
                        answer(reply, complete(&client, &mut pending, epoch, e, id).await);
                    }
                    Some(Command::Close { done }) => {
                        // DISCONNECT goes out after the PUBACKs already queued
                        let _ = client.disconnect().await;
                        let _ = tokio::time::timeout(Duration::from_secs(5), async {
                            while let Ok(event) = eventloop.poll().await {
                                if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                                    break;
                                }
                            }
                        })
                        .await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::GiveUp { epoch: e, id }) => {
                        if e == epoch {
                            if let Some(p) = pending.iter_mut().find(|p| p.id == id) {
                                p.given_up = true;
                            }
                            let _ = flush(&client, &mut pending).await;
                        }
                    }
                    None => return,
                },
                // without a token (X.509) there is nothing to renew
                _ = &mut renew, if renew_in.is_some() => {
                    // a new token needs a new CONNECT; the session (and its messages) stays
                    let _ = client.disconnect().await;
                    break Error::new(ErrorKind::Unavailable, RENEWING);
                }
            }
        };
        link.live(0);
        attempt += 1;
        if error.message() == RENEWING {
            attempt = 0;
            link.status
                .send(crate::status::ConnectionStatus::Disconnected(
                    RENEWING.into(),
                ));
            continue;
        }
        match link.failed(attempt, error) {
            Some(delay) => tokio::time::sleep(delay).await,
            None => return,
        }
    }
}

/// Completes a message: PUBACKs go out in arrival order, so a completion waits for those of
/// the messages received before it.
async fn complete(
    client: &AsyncClient,
    pending: &mut VecDeque<Pending>,
    epoch: u64,
    message_epoch: u64,
    id: u64,
) -> Result<()> {
    if message_epoch != epoch {
        return Err(Error::new(
            ErrorKind::MessageLockLost,
            "the connection that received the message is gone; the hub delivers it again",
        ));
    }
    // a message is settled once (the API takes it by value), so one that is not pending any
    // more was skipped by `flush` when its lock ended
    let entry = pending.iter_mut().find(|p| p.id == id).ok_or_else(|| {
        Error::new(
            ErrorKind::MessageLockLost,
            "the message's lock expired; the hub delivers it again",
        )
    })?;
    if entry.received.elapsed() > LOCK {
        return Err(Error::new(
            ErrorKind::MessageLockLost,
            "the message's lock expired; the hub delivers it again",
        ));
    }
    entry.completed = true;
    flush(client, pending).await
}

/// Sends the PUBACKs that are due: from the oldest message on, while each is completed (or
/// given up, or past its lock, which are skipped: the hub delivers those again, and one the
/// application holds on to without settling must not hold back the messages after it).
async fn flush(client: &AsyncClient, pending: &mut VecDeque<Pending>) -> Result<()> {
    while pending
        .front()
        .is_some_and(|p| p.completed || p.given_up || p.received.elapsed() > LOCK)
    {
        let p = pending.pop_front().expect("checked");
        if p.completed {
            client.ack(&p.publish).await.map_err(|e| {
                Error::new(ErrorKind::Unavailable, format!("sending the PUBACK: {e}"))
            })?;
        }
    }
    Ok(())
}
