//! The parts of an AMQP connection as data: its sessions and their links (what each link is,
//! what it holds), the deliveries under way, and the frames that flow and carry them. The
//! connection's behaviour is in [`super::connection`] and the modules beside it, which all
//! build on this one.

use std::collections::HashMap;
use std::sync::Arc;

use fe2o3_amqp_types::definitions::{
    DeliveryNumber, Error as AmqpErr, ErrorCondition, Handle, ReceiverSettleMode,
};
use fe2o3_amqp_types::messaging::{DeliveryState, Rejected};
use fe2o3_amqp_types::performatives::{Flow, Transfer};
use fe2o3_amqp_types::primitives::Binary;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::frames::{self};
use crate::context::HubContext;
use crate::state::feedback::FeedbackDelivery;
use crate::state::Delivery;

/// Largest frame the hub accepts.
pub(super) const MAX_FRAME: usize = 256 * 1024;

/// The session window the hub grants (in transfer frames), refreshed at half.
pub(super) const WINDOW: u32 = 5000;

/// Link credit the hub grants on links it receives on, refreshed at half.
pub(super) const CREDIT: u32 = 100;

/// How much output waits for the frames still queued behind it before it is written anyway.
pub(super) const FLUSH_AT: usize = 64 * 1024;

/// An error that closes the connection.
pub(super) struct Fatal(pub(super) ErrorCondition, pub(super) String);

pub(super) fn amqp_error(
    condition: impl Into<ErrorCondition>,
    description: impl Into<String>,
) -> AmqpErr {
    AmqpErr {
        condition: condition.into(),
        description: Some(description.into()),
        info: None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum LinkKind {
    /// The client's `$cbs` sender: put-token requests.
    CbsRequests,
    /// The client's `$cbs` receiver (its target address): replies go here.
    CbsReplies { address: Option<String> },
    /// The service's `/messages/devicebound` sender.
    C2dSend,
    /// The service's `/messages/serviceBound/feedback` receiver.
    Feedback { owner: u64 },
    /// A device's `/devices/{id}/messages/devicebound` receiver.
    DeviceReceive { device: String, owner: u64 },
    /// Attached, then detached with an error.
    Refused,
}

/// A delivery being received across frames.
pub(super) struct Partial {
    pub(super) delivery_id: DeliveryNumber,
    pub(super) settled: bool,
    pub(super) payload: Vec<u8>,
    pub(super) too_large: bool,
}

pub(super) struct Link {
    pub(super) kind: LinkKind,
    /// Receiving: credit we granted and deliveries received.
    pub(super) credit: u32,
    pub(super) delivery_count: u32,
    pub(super) partial: Option<Partial>,
    /// Sending: credit the peer granted, deliveries sent, drain asked.
    pub(super) peer_credit: u32,
    pub(super) sent_count: u32,
    pub(super) drain: bool,
    pub(super) fetching: bool,
    /// The last fetch found nothing: wait for a wake-up before fetching again.
    pub(super) empty: bool,
    /// A wake-up came while a fetch was under way: that fetch's "nothing" may be stale.
    pub(super) woken_while_fetching: bool,
    pub(super) ready: Option<Outgoing>,
    /// Forwards the device's queue wake-ups to the connection (device links).
    pub(super) wake: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(t) = self.wake.take() {
            t.abort();
        }
    }
}

/// A delivery fetched from the store, waiting for credit.
pub(super) enum Outgoing {
    Feedback(FeedbackDelivery),
    Message(Box<Delivery>),
}

impl Outgoing {
    pub(super) fn lock_token(&self) -> Uuid {
        match self {
            Outgoing::Feedback(d) => d.lock_token,
            Outgoing::Message(d) => d.lock_token,
        }
    }
}

impl Link {
    pub(super) fn new(kind: LinkKind) -> Self {
        Link {
            kind,
            credit: 0,
            delivery_count: 0,
            partial: None,
            peer_credit: 0,
            sent_count: 0,
            drain: false,
            fetching: false,
            empty: false,
            woken_while_fetching: false,
            ready: None,
            wake: None,
        }
    }
}

pub(super) struct Session {
    pub(super) next_outgoing_id: u32,
    pub(super) next_incoming_id: u32,
    pub(super) incoming_window: u32,
    pub(super) remote_incoming_window: u32,
    pub(super) next_delivery_id: u32,
    pub(super) links: HashMap<u32, Link>,
    /// Our unsettled deliveries: delivery id → (link handle, lock token).
    pub(super) unsettled: HashMap<u32, (u32, Uuid)>,
}

pub(super) enum Done {
    Sent {
        channel: u16,
        delivery_id: u32,
        settled: bool,
        outcome: DeliveryState,
    },
    Fetched {
        channel: u16,
        handle: u32,
        owner: u64,
        item: Option<Box<Outgoing>>,
    },
    Settled {
        channel: u16,
        delivery_id: u32,
        reply: Option<DeliveryState>,
    },
    Nothing,
}

/// What a sending link fetches from the store.
pub(super) enum Fetch {
    Feedback(u64),
    /// A device's queue, for the link's owner; each delivery waits the delay a fault set.
    Device(String, u64, Option<std::time::Duration>),
}

/// The answer to a settlement whose lock is gone.
pub(super) fn lock_lost() -> DeliveryState {
    DeliveryState::Rejected(Rejected {
        error: Some(amqp_error(
            ErrorCondition::Custom(fe2o3_amqp_types::primitives::Symbol::from(
                "com.microsoft:message-lock-lost",
            )),
            "the message lock was lost or has expired",
        )),
    })
}

pub(super) fn session_flow(session: &Session) -> Flow {
    Flow {
        next_incoming_id: Some(session.next_incoming_id),
        incoming_window: session.incoming_window,
        next_outgoing_id: session.next_outgoing_id,
        outgoing_window: WINDOW,
        handle: None,
        delivery_count: None,
        link_credit: None,
        available: None,
        drain: false,
        echo: false,
        properties: None,
    }
}

pub(super) fn link_flow(session: &Session, handle: u32, delivery_count: u32, credit: u32) -> Flow {
    Flow {
        handle: Some(Handle(handle)),
        delivery_count: Some(delivery_count),
        link_credit: Some(credit),
        ..session_flow(session)
    }
}

/// Writes one delivery as as many transfer frames as the peer's frame size needs.
#[allow(clippy::too_many_arguments)]
pub(super) fn transfer(
    session: &mut Session,
    channel: u16,
    handle: u32,
    delivery_id: u32,
    tag: &[u8],
    settled: bool,
    payload: &[u8],
    max_frame: usize,
    out: &mut Vec<u8>,
) {
    let first = Transfer {
        handle: Handle(handle),
        delivery_id: Some(delivery_id),
        delivery_tag: Some(Binary::from(tag.to_vec())),
        message_format: Some(0),
        settled: Some(settled),
        more: true,
        rcv_settle_mode: None::<ReceiverSettleMode>,
        state: None,
        resume: false,
        aborted: false,
        batchable: false,
    };
    let overhead = 8 + frames::encoded_len(&first);
    let room = max_frame.saturating_sub(overhead).max(1);
    let mut chunks = payload.chunks(room).peekable();
    let mut performative = first;
    if chunks.peek().is_none() {
        performative.more = false;
        frames::amqp_frame(channel, &performative, &[], out);
        session.next_outgoing_id = session.next_outgoing_id.wrapping_add(1);
        session.remote_incoming_window = session.remote_incoming_window.saturating_sub(1);
        return;
    }
    while let Some(chunk) = chunks.next() {
        performative.more = chunks.peek().is_some();
        frames::amqp_frame(channel, &performative, chunk, out);
        session.next_outgoing_id = session.next_outgoing_id.wrapping_add(1);
        session.remote_incoming_window = session.remote_incoming_window.saturating_sub(1);
        performative = Transfer {
            handle: Handle(handle),
            delivery_id: None,
            delivery_tag: None,
            message_format: None,
            settled: None,
            more: false,
            rcv_settle_mode: None,
            state: None,
            resume: false,
            aborted: false,
            batchable: false,
        };
    }
}

/// Gives back what a link held: locked messages or feedback go back to their queue, and a
/// device's receiving link stops being the device's.
pub(super) fn release_of(ctx: &Arc<HubContext>, kind: &LinkKind) -> Option<BoxFuture<'static, ()>> {
    let store = ctx.store.clone();
    match kind.clone() {
        LinkKind::Feedback { owner } => Some(Box::pin(async move {
            let _ = store
                .exec(move |s, _| s.feedback_release_owner(owner))
                .await;
        })),
        LinkKind::DeviceReceive { device, owner } => {
            ctx.sessions.end_amqp(&device, owner);
            Some(Box::pin(async move {
                let _ = store.exec(move |s, now| s.release_owner(now, owner)).await;
            }))
        }
        _ => None,
    }
}
