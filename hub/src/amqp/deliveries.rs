//! Deliveries in both directions: a service's C2D sends (queued once committed), the
//! deliveries of a device's queue and of the feedback queue (fetched where credit allows),
//! and their dispositions (complete, reject, abandon).

use c2d::service::feedback::encode_batch;
use fe2o3_amqp_types::definitions::{AmqpError, ErrorCondition, LinkError, Role};
use fe2o3_amqp_types::messaging::{Accepted, DeliveryState, Rejected};
use fe2o3_amqp_types::performatives::{Disposition, Flow, Transfer};
use fe2o3_amqp_types::primitives::Symbol;
use tokio::io::AsyncWrite;

use super::connection::Conn;
use super::convert::{self};
use super::frames::{self};
use super::session::{
    amqp_error, link_flow, lock_lost, session_flow, transfer, Done, Fatal, Fetch, LinkKind,
    Outgoing, Partial, CREDIT, WINDOW,
};
use crate::auth::Access;
use crate::fault_state::SendRefusal;
use crate::state::{SendError, Settlement};
use crate::throttle::{Admission, Operation};

/// The condition IoT Hub rejects a throttled C2D send with.
const THROTTLED: &str = "com.microsoft:device-container-throttled";
/// The condition IoT Hub rejects a send with when its daily message quota is used up.
const QUOTA_EXCEEDED: &str = "com.microsoft:quota-exceeded";

impl<W: AsyncWrite + Unpin> Conn<W> {
    pub(super) fn on_transfer(
        &mut self,
        channel: u16,
        t: Transfer,
        payload: &[u8],
    ) -> Result<(), Fatal> {
        let limit = self.ctx.store.read(|s| s.limits.max_message_size);
        let session = self.session(channel)?;
        session.next_incoming_id = session.next_incoming_id.wrapping_add(1);
        session.incoming_window = session.incoming_window.saturating_sub(1);
        let mut frames_out: Vec<Flow> = Vec::new();
        if session.incoming_window < WINDOW / 2 {
            session.incoming_window = WINDOW;
            frames_out.push(session_flow(session));
        }
        let handle = t.handle.0;
        let Some(link) = session.links.get_mut(&handle) else {
            return Err(Fatal(
                fe2o3_amqp_types::definitions::SessionError::UnattachedHandle.into(),
                format!("transfer on unattached handle {handle}"),
            ));
        };
        if link.partial.is_none() {
            let delivery_id = t.delivery_id.ok_or_else(|| {
                Fatal(
                    AmqpError::InvalidField.into(),
                    "the first transfer of a delivery has no delivery-id".into(),
                )
            })?;
            link.partial = Some(Partial {
                delivery_id,
                settled: t.settled.unwrap_or(false),
                payload: Vec::new(),
                too_large: false,
            });
            link.credit = link.credit.saturating_sub(1);
            link.delivery_count = link.delivery_count.wrapping_add(1);
        }
        let partial = link.partial.as_mut().expect("set above");
        // keep enough to read the properties of an oversized message, not the whole of it
        let cap = limit.saturating_mul(2) + 64 * 1024;
        if partial.payload.len() + payload.len() > cap {
            partial.too_large = true;
        } else {
            partial.payload.extend_from_slice(payload);
        }
        if t.aborted {
            link.partial = None;
        } else if !t.more {
            let done = link.partial.take().expect("set above");
            let kind = link.kind.clone();
            if link.credit < CREDIT / 2 {
                link.credit = CREDIT;
                let count = link.delivery_count;
                frames_out.push(link_flow(session, handle, count, CREDIT));
            }
            for f in frames_out.drain(..) {
                self.send(channel, &f);
            }
            self.on_delivery(channel, kind, done, limit);
        }
        for f in frames_out {
            self.send(channel, &f);
        }
        Ok(())
    }

    /// A whole message arrived on a link the hub receives on.
    pub(super) fn on_delivery(&mut self, channel: u16, kind: LinkKind, d: Partial, limit: usize) {
        match kind {
            LinkKind::CbsRequests => {
                let (reply_to, reply) = match convert::decode(&d.payload) {
                    Ok(m) => (
                        m.properties.as_ref().and_then(|p| p.reply_to.clone()),
                        self.put_token(&m),
                    ),
                    Err(e) => (None, convert::cbs_reply(None, 400, &e)),
                };
                self.cbs_replies.push_back((reply_to, reply));
                if !d.settled {
                    self.dispose(
                        channel,
                        Role::Receiver,
                        d.delivery_id,
                        DeliveryState::Accepted(Accepted {}),
                    );
                }
                self.send_cbs_replies();
            }
            LinkKind::C2dSend => {
                let outcome = self.c2d_send(channel, &d, limit);
                if let Some(state) = outcome {
                    if !d.settled {
                        self.dispose(channel, Role::Receiver, d.delivery_id, state);
                    }
                }
            }
            LinkKind::CbsReplies { .. }
            | LinkKind::Feedback { .. }
            | LinkKind::DeviceReceive { .. }
            | LinkKind::Refused => {}
        }
    }

    /// Queues a service's message; returns the outcome now when it is known without the
    /// store (or `None` when the store will answer).
    pub(super) fn c2d_send(
        &mut self,
        channel: u16,
        d: &Partial,
        limit: usize,
    ) -> Option<DeliveryState> {
        let reject = |condition: ErrorCondition, text: String| {
            DeliveryState::Rejected(Rejected {
                error: Some(amqp_error(condition, text)),
            })
        };
        if d.too_large {
            return Some(reject(
                LinkError::MessageSizeExceeded.into(),
                format!("the message exceeds the limit of {limit} bytes"),
            ));
        }
        if !self.authorized(Access::Service) {
            return Some(reject(
                AmqpError::UnauthorizedAccess.into(),
                "the connection's token has expired".into(),
            ));
        }
        let message = match convert::decode(&d.payload).and_then(|m| convert::to_c2d(&m)) {
            Ok(m) => m,
            Err(e) => return Some(reject(AmqpError::DecodeError.into(), e)),
        };
        let Some(device) = message.to.as_deref().and_then(convert::device_of_to) else {
            return Some(reject(
                AmqpError::InvalidField.into(),
                format!(
                    "'to' must be /devices/{{deviceId}}/messages/devicebound, not {:?}",
                    message.to
                ),
            ));
        };
        if let Some(refusal) = self.ctx.refused_by_fault() {
            let condition = match refusal {
                SendRefusal::Throttled => ErrorCondition::Custom(Symbol::from(THROTTLED)),
                SendRefusal::Busy => AmqpError::InternalError.into(),
                SendRefusal::Quota => ErrorCondition::Custom(Symbol::from(QUOTA_EXCEEDED)),
            };
            return Some(reject(
                condition,
                format!(
                    "{} {}: refused by a fault the hub was asked for",
                    refusal.code(),
                    refusal.name()
                ),
            ));
        }
        let wait = match self.ctx.admit(Operation::C2dSend) {
            Admission::Now => None,
            Admission::After(wait) => Some(wait),
            Admission::Refused => {
                return Some(reject(
                    ErrorCondition::Custom(Symbol::from(THROTTLED)),
                    "IotHubThrottled: 429001 ThrottlingException: the hub's rate of C2D sends \
                     is exceeded; back off and retry"
                        .into(),
                ))
            }
        };
        let store = self.ctx.store.clone();
        let delivery_id = d.delivery_id;
        let settled = d.settled;
        self.pending.push(Box::pin(async move {
            if let Some(wait) = wait {
                // traffic shaping: the send waits its turn at the throttled rate
                tokio::time::sleep(wait).await;
            }
            let result = store.send(&device, message).await;
            let outcome = match result {
                Ok(Ok(_)) => DeliveryState::Accepted(Accepted {}),
                Ok(Err(e @ SendError::DeviceNotFound(_))) => {
                    reject(AmqpError::NotFound.into(), e.to_string())
                }
                Ok(Err(e @ SendError::QueueFull { .. })) => reject(
                    AmqpError::ResourceLimitExceeded.into(),
                    format!("{e}, see more at http://aka.ms/iothub403004"),
                ),
                Ok(Err(e @ SendError::TooLarge { .. })) => {
                    reject(LinkError::MessageSizeExceeded.into(), e.to_string())
                }
                Err(e) => reject(AmqpError::InternalError.into(), e.to_string()),
            };
            Done::Sent {
                channel,
                delivery_id,
                settled,
                outcome,
            }
        }));
        None
    }

    pub(super) fn on_disposition(&mut self, channel: u16, d: Disposition) -> Result<(), Fatal> {
        if d.role != Role::Receiver {
            return Ok(()); // the peer settling its own deliveries to us after our answer
        }
        let how = match &d.state {
            Some(DeliveryState::Accepted(_)) => Some(Settlement::Complete),
            Some(DeliveryState::Rejected(_)) => Some(Settlement::Reject),
            Some(DeliveryState::Released(_)) | Some(DeliveryState::Modified(_)) => {
                Some(Settlement::Abandon)
            }
            _ => None,
        };
        let Some(how) = how else { return Ok(()) };
        let reply_wanted = !d.settled;
        let session = self.session(channel)?;
        let last = d.last.unwrap_or(d.first);
        let mut work = Vec::new();
        let mut id = d.first;
        loop {
            // (delivery id, what to settle): None when the delivery is unknown here
            let entry = session.unsettled.remove(&id).and_then(|(handle, token)| {
                session.links.get(&handle).map(|l| (l.kind.clone(), token))
            });
            work.push((id, entry));
            if id == last {
                break;
            }
            id = id.wrapping_add(1);
        }
        for (delivery_id, entry) in work {
            let store = self.ctx.store.clone();
            let Some((kind, token)) = entry else {
                // a lock from before a reconnect, or settled twice
                if reply_wanted {
                    self.dispose(channel, Role::Sender, delivery_id, lock_lost());
                }
                continue;
            };
            self.pending.push(Box::pin(async move {
                let result = match kind {
                    LinkKind::DeviceReceive { device, .. } => {
                        store
                            .apply_durably(move |s, now| s.settle(now, &device, token, how))
                            .await
                    }
                    _ => {
                        store
                            .exec(move |s, now| s.feedback_settle(now, token, how))
                            .await
                    }
                };
                let reply = reply_wanted.then(|| match result {
                    Ok(Ok(())) => DeliveryState::Accepted(Accepted {}),
                    _ => lock_lost(),
                });
                Done::Settled {
                    channel,
                    delivery_id,
                    reply,
                }
            }));
        }
        Ok(())
    }

    pub(super) fn on_done(&mut self, done: Done) {
        match done {
            Done::Sent {
                channel,
                delivery_id,
                settled,
                outcome,
            } => {
                if let DeliveryState::Rejected(r) = &outcome {
                    tracing::info!(peer = %self.peer, error = ?r.error.as_ref().and_then(|e| e.description.clone()), "AMQP: C2D send refused");
                }
                if !settled && self.sessions.contains_key(&channel) {
                    self.dispose(channel, Role::Receiver, delivery_id, outcome);
                }
            }
            Done::Settled {
                channel,
                delivery_id,
                reply,
            } => {
                if let Some(state) = reply {
                    if self.sessions.contains_key(&channel) {
                        self.dispose(channel, Role::Sender, delivery_id, state);
                    }
                }
            }
            Done::Fetched {
                channel,
                handle,
                owner,
                item,
            } => {
                let link = self
                    .sessions
                    .get_mut(&channel)
                    .and_then(|s| s.links.get_mut(&handle));
                match link {
                    Some(link) => {
                        link.fetching = false;
                        link.empty = item.is_none() && !link.woken_while_fetching;
                        link.woken_while_fetching = false;
                        link.ready = item.map(|b| *b);
                    }
                    None if item.is_some() => {
                        // the link went away while its delivery was being fetched
                        let store = self.ctx.store.clone();
                        self.pending.push(Box::pin(async move {
                            let _ = store
                                .exec(move |s, now| {
                                    s.release_owner(now, owner);
                                    s.feedback_release_owner(owner);
                                })
                                .await;
                            Done::Nothing
                        }));
                    }
                    None => {}
                }
                self.pump();
            }
            Done::Nothing => {}
        }
    }

    /// Sends fetched deliveries where credit allows, and fetches more for the links that
    /// have credit (device links: the device's queue; feedback links: the feedback queue).
    pub(super) fn pump(&mut self) {
        let hub_name = c2d::connection_string::hub_name_of(&self.ctx.host_name).to_string();
        let max_frame = self.remote_max_frame;
        let channels: Vec<u16> = self.sessions.keys().copied().collect();
        for channel in channels {
            let session = self.sessions.get_mut(&channel).expect("listed above");
            let handles: Vec<u32> = session.links.keys().copied().collect();
            for handle in handles {
                let link = session.links.get_mut(&handle).expect("listed above");
                let fetch = match &link.kind {
                    LinkKind::Feedback { owner } => Fetch::Feedback(*owner),
                    LinkKind::DeviceReceive { device, owner } => {
                        Fetch::Device(device.clone(), *owner, self.ctx.faults.delay(device))
                    }
                    _ => continue,
                };
                if link.peer_credit > 0 && session.remote_incoming_window > 0 {
                    if let Some(item) = link.ready.take() {
                        let message = match &item {
                            Outgoing::Feedback(d) => convert::feedback_message(
                                &hub_name,
                                d.enqueued,
                                encode_batch(&d.records),
                            ),
                            Outgoing::Message(d) => convert::device_message(d),
                        };
                        link.peer_credit -= 1;
                        link.sent_count = link.sent_count.wrapping_add(1);
                        let token = item.lock_token();
                        let delivery_id = session.next_delivery_id;
                        session.next_delivery_id = session.next_delivery_id.wrapping_add(1);
                        session.unsettled.insert(delivery_id, (handle, token));
                        let payload = convert::encode(&message);
                        // the tag is the lock token in .NET's byte order, as C# reads it
                        let tag = token.to_bytes_le();
                        transfer(
                            session,
                            channel,
                            handle,
                            delivery_id,
                            &tag,
                            false,
                            &payload,
                            max_frame,
                            &mut self.out,
                        );
                    }
                }
                let link = session.links.get_mut(&handle).expect("listed above");
                if link.peer_credit > 0 && link.ready.is_none() && !link.fetching && !link.empty {
                    link.fetching = true;
                    let store = self.ctx.store.clone();
                    self.pending.push(Box::pin(async move {
                        let (owner, item) = match fetch {
                            Fetch::Feedback(owner) => {
                                let d = store
                                    .exec(move |s, now| s.feedback_receive(now, owner))
                                    .await;
                                (owner, d.ok().flatten().map(Outgoing::Feedback))
                            }
                            Fetch::Device(device, owner, delay) => {
                                let d = store.apply(move |s, now| s.receive(now, &device, owner));
                                if let (Some(_), Some(delay)) = (&d, delay) {
                                    // a fault: every delivery to this device is late (its
                                    // lock runs)
                                    tokio::time::sleep(delay).await;
                                }
                                (owner, d.map(|d| Outgoing::Message(Box::new(d))))
                            }
                        };
                        Done::Fetched {
                            channel,
                            handle,
                            owner,
                            item: item.map(Box::new),
                        }
                    }));
                } else if link.drain && link.empty && !link.fetching && link.peer_credit > 0 {
                    // nothing to send: use up the credit as drain asks
                    link.sent_count = link.sent_count.wrapping_add(link.peer_credit);
                    link.peer_credit = 0;
                    link.drain = false;
                    let count = link.sent_count;
                    let mut flow = link_flow(session, handle, count, 0);
                    flow.drain = true;
                    frames::amqp_frame(channel, &flow, &[], &mut self.out);
                }
            }
        }
    }
}
