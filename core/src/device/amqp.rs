//! The AMQP connection task: CBS with the device's token, the receiving link on
//! `/devices/{id}/messages/devicebound`, and settlement by disposition.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use fe2o3_amqp::link::delivery::DeliveryInfo;
use fe2o3_amqp::link::receiver::CreditMode;
use fe2o3_amqp::types::definitions::ReceiverSettleMode;
use fe2o3_amqp::types::messaging::message::Body;
use fe2o3_amqp::types::primitives::Value;
use fe2o3_amqp::Receiver;

use super::{answer, Command, Delivered, Link, Settlement, LOCK};
use crate::amqp::session::AmqpSession;
use crate::error::{Error, ErrorKind, Result};

struct Held {
    info: DeliveryInfo,
    received: tokio::time::Instant,
}

/// Opens the session and the C2D link; returns them with when the token must be renewed
/// (`None` for X.509: the certificate in the TLS handshake authenticates the link).
async fn open(link: &Link) -> Result<(AmqpSession, Receiver, Option<SystemTime>)> {
    let c = &link.config;
    let websocket = c.options.transport == super::Transport::AmqpWs;
    let mut amqp = AmqpSession::open(
        &c.connect_host,
        c.port_or_default(),
        websocket,
        link.tls.clone(),
        c.options.connection.timeout,
        c.options.connection.proxy.as_ref(),
    )
    .await?;
    let token = c.token()?;
    let expiry = token.as_ref().map(|(_, e)| *e);
    if let Some((token, _)) = token {
        let audience = format!("{}/devices/{}", c.host_name, c.device_id);
        amqp.put_token(&audience, &token, c.options.connection.timeout)
            .await?;
    }
    let receiver = Receiver::builder()
        .name(format!("c2d-receive-{}", uuid::Uuid::new_v4()))
        .source(format!("/devices/{}/messages/devicebound", c.device_id))
        .target(format!("c2d-{}", c.device_id))
        .receiver_settle_mode(ReceiverSettleMode::First)
        .credit_mode(CreditMode::Auto(u32::from(c.options.in_flight)))
        .attach(&mut amqp.session)
        .await
        .map_err(|e| {
            let text = format!("{e:?}");
            let kind = if text.contains("Unauthorized") {
                ErrorKind::Unauthorized
            } else {
                ErrorKind::Unavailable
            };
            Error::new(kind, format!("attaching the C2D link: {text}"))
        })?;
    Ok((amqp, receiver, expiry))
}

/// What a device makes of a C2D message that came over AMQP: the message, its delivery count,
/// when the hub enqueued it and its sequence number.
pub(crate) fn received(
    m: &crate::amqp::AmqpMessage,
) -> Result<(crate::Message, u32, Option<SystemTime>, Option<u64>)> {
    let message = crate::amqp::to_c2d(m).map_err(|e| Error::new(ErrorKind::Protocol, e))?;
    let delivery_count = m.header.as_ref().map_or(0, |h| h.delivery_count);
    let mut enqueued = None;
    let mut sequence = None;
    if let Some(annotations) = &m.message_annotations {
        for (k, v) in annotations.0.iter() {
            let key = match k {
                fe2o3_amqp::types::messaging::annotations::OwnedKey::Symbol(s) => s.0.as_str(),
                _ => continue,
            };
            match (key, v) {
                ("iothub-enqueuedtime", Value::Timestamp(t)) => {
                    enqueued = Some(crate::timestamp::from_unix_millis(t.milliseconds()))
                }
                ("x-opt-sequence-number", Value::Ulong(n)) => sequence = Some(*n),
                ("x-opt-sequence-number", Value::Long(n)) => sequence = u64::try_from(*n).ok(),
                _ => {}
            }
        }
    }
    Ok((message, delivery_count, enqueued, sequence))
}

pub(super) async fn run(mut link: Link) {
    let mut epoch = 0u64;
    let mut attempt = 0u32;
    loop {
        let (mut amqp, mut receiver, mut expiry) = match open(&link).await {
            Ok(x) => x,
            Err(e) => {
                attempt += 1;
                match link.failed(attempt, e) {
                    Some(d) => {
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    None => return,
                }
            }
        };
        attempt = 0;
        epoch += 1;
        link.live(epoch);
        link.connected();
        let mut held: HashMap<u64, Held> = HashMap::new();
        let mut next_id = 0u64;
        let error: Error = loop {
            let renew_in = expiry.map_or(Duration::ZERO, |expiry| {
                link.config
                    .renew_at(expiry)
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            });
            tokio::select! {
                d = receiver.recv::<Body<Value>>() => {
                    let delivery = match d {
                        Ok(d) => d,
                        Err(e) => break Error::new(ErrorKind::Unavailable, format!("the C2D link ended: {e:?}")),
                    };
                    let lock_token = (delivery.delivery_tag().len() == 16)
                        .then(|| uuid::Uuid::from_slice_le(delivery.delivery_tag()).ok().map(|u| u.to_string()))
                        .flatten();
                    match received(delivery.message()) {
                        Ok((message, delivery_count, enqueued_time, sequence_number)) => {
                            next_id += 1;
                            held.insert(next_id, Held { info: DeliveryInfo::from(delivery), received: tokio::time::Instant::now() });
                            let d = Delivered { message, delivery_count, enqueued_time, sequence_number, lock_token };
                            if !link.hand_over(epoch, next_id, d) {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "c2d device: undecodable C2D message rejected");
                            let _ = receiver.reject(&delivery, None).await;
                        }
                    }
                }
                command = link.commands.recv() => {
                    let (e, id, how, reply) = match command {
                        Some(Command::Settle { epoch, id, how, reply }) => (epoch, id, how, reply),
                        Some(Command::GiveUp { id, .. }) => {
                            // unsettled: the hub's lock ends and it delivers the message again.
                            // Credit comes back only with settlements, so give its unit back
                            // now, or enough dropped messages would stop every delivery.
                            if held.remove(&id).is_some() {
                                if let Err(e) = receiver.set_credit(u32::from(link.config.options.in_flight)).await {
                                    break Error::new(ErrorKind::Unavailable, format!("granting link credit: {e:?}"));
                                }
                            }
                            continue;
                        }
                        Some(Command::Close { done }) => {
                            let _ = receiver.close().await;
                            amqp.close().await;
                            let _ = done.send(());
                            return;
                        }
                        None => return,
                    };
                    let result = if e != epoch {
                        Err(Error::new(ErrorKind::MessageLockLost, "the connection that received the message is gone; the hub delivers it again"))
                    } else {
                        match held.remove(&id) {
                            None => Err(Error::new(ErrorKind::AlreadySettled, "the message was already settled")),
                            Some(h) if h.received.elapsed() > LOCK => {
                                Err(Error::new(ErrorKind::MessageLockLost, "the message's lock expired; the hub delivers it again"))
                            }
                            Some(h) => match how {
                                Settlement::Complete => receiver.accept(h.info).await,
                                Settlement::Reject => receiver.reject(h.info, None).await,
                                Settlement::Abandon => receiver.release(h.info).await,
                            }
                            .map_err(|e| Error::new(ErrorKind::Unavailable, format!("settling: {e:?}"))),
                        }
                    };
                    answer(reply, result);
                }
                _ = tokio::time::sleep(renew_in), if expiry.is_some() => {
                    match link.config.token() {
                        Ok(Some((token, new_expiry))) => {
                            let audience = format!("{}/devices/{}", link.config.host_name, link.config.device_id);
                            match amqp.put_token(&audience, &token, link.config.options.connection.timeout).await {
                                Ok(()) => expiry = Some(new_expiry),
                                Err(e) => break e,
                            }
                        }
                        Ok(None) => expiry = None,
                        Err(e) => break e,
                    }
                }
            }
        };
        link.live(0);
        let _ = receiver.close().await;
        amqp.close().await;
        attempt += 1;
        match link.failed(attempt, error) {
            Some(d) => tokio::time::sleep(d).await,
            None => return,
        }
    }
}
