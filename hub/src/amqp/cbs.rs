//! Claims-based security: a `put-token` on the `$cbs` link adds a grant to the connection,
//! and the reply goes back on the client's `$cbs` receiver.

use fe2o3_amqp_types::primitives::{SimpleValue, Value};
use tokio::io::AsyncWrite;
use uuid::Uuid;

use super::connection::Conn;
use super::convert::{self, AmqpMessage};
use super::session::{transfer, LinkKind};

impl<W: AsyncWrite + Unpin> Conn<W> {
    /// Handles a CBS request; returns the reply.
    pub(super) fn put_token(&mut self, m: &AmqpMessage) -> AmqpMessage {
        let request_id = m.properties.as_ref().and_then(|p| p.message_id.clone());
        let prop = |name: &str| {
            m.application_properties
                .as_ref()
                .and_then(|p| match p.0.get(name) {
                    Some(SimpleValue::String(s)) => Some(s.clone()),
                    Some(SimpleValue::Symbol(s)) => Some(s.0.clone()),
                    _ => None,
                })
        };
        if prop("operation").as_deref() != Some("put-token") {
            return convert::cbs_reply(
                request_id,
                400,
                "only the put-token operation is supported",
            );
        }
        let token = match &m.body {
            fe2o3_amqp_types::messaging::message::Body::Value(
                fe2o3_amqp_types::messaging::AmqpValue(Value::String(s)),
            ) => s.clone(),
            _ => {
                return convert::cbs_reply(
                    request_id,
                    400,
                    "the put-token body must be the token as an AMQP string",
                )
            }
        };
        let now = self.ctx.store.now();
        let grant = self
            .ctx
            .store
            .read(|s| crate::auth::authenticate(&s.registry, &self.ctx.host_name, &token, now));
        match grant {
            Ok(g) => {
                tracing::debug!(peer = %self.peer, who = %g.who(), "AMQP: CBS token accepted");
                self.grants.push(g);
                convert::cbs_reply(request_id, 200, "OK")
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, name = ?prop("name"), "AMQP: CBS token refused");
                convert::cbs_reply(request_id, 401, &e.to_string())
            }
        }
    }

    /// Sends queued CBS replies on a `$cbs` receiver link with credit.
    pub(super) fn send_cbs_replies(&mut self) {
        let max_frame = self.remote_max_frame;
        while let Some((reply_to, _)) = self.cbs_replies.front() {
            // the link whose target is the request's reply-to (C#), else any `$cbs` receiver
            // link with credit (Node says `cbs`, uAMQP says nothing)
            let candidates: Vec<(u16, u32, bool)> = self
                .sessions
                .iter()
                .flat_map(|(ch, s)| {
                    s.links.iter().filter_map(move |(h, l)| match &l.kind {
                        LinkKind::CbsReplies { address } if l.peer_credit > 0 => {
                            Some((*ch, *h, reply_to.is_some() && address == reply_to))
                        }
                        _ => None,
                    })
                })
                .collect();
            let target = candidates
                .iter()
                .find(|(_, _, exact)| *exact)
                .or(candidates.first())
                .map(|(ch, h, _)| (*ch, *h));
            let Some((channel, handle)) = target else {
                return;
            };
            let (_, reply) = self.cbs_replies.pop_front().expect("front exists");
            let session = self.sessions.get_mut(&channel).expect("found above");
            let link = session.links.get_mut(&handle).expect("found above");
            link.peer_credit -= 1;
            link.sent_count = link.sent_count.wrapping_add(1);
            let delivery_id = session.next_delivery_id;
            session.next_delivery_id = session.next_delivery_id.wrapping_add(1);
            let payload = convert::encode(&reply);
            let tag = Uuid::new_v4();
            transfer(
                session,
                channel,
                handle,
                delivery_id,
                tag.as_bytes(),
                true,
                &payload,
                max_frame,
                &mut self.out,
            );
        }
    }
}
