//! One AMQP connection: sessions, links, CBS, C2D sends, C2D deliveries to devices and
//! feedback deliveries to services.
//!
//! A reader task turns bytes into frames; this task owns all state, answers frames in
//! order, and runs store operations as futures whose completions (a send committed, a
//! feedback batch fetched or settled) come back into the same loop, so one connection can
//! have many sends committing at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use c2d::service::feedback::encode_batch;
use fe2o3_amqp_types::definitions::{
    AmqpError, ConnectionError, DeliveryNumber, Error as AmqpErr, ErrorCondition, Handle,
    LinkError, ReceiverSettleMode, Role,
};
use fe2o3_amqp_types::messaging::{Accepted, DeliveryState, Rejected};
use fe2o3_amqp_types::performatives::{
    Attach, Begin, ChannelMax, Close, Detach, Disposition, End, Flow, MaxFrameSize, Open,
    Performative, Transfer,
};
use fe2o3_amqp_types::primitives::{Binary, SimpleValue, Value};
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::convert::{self, AmqpMessage};
use super::frames::{self, RawFrame};
use super::Control;
use crate::auth::{Access, Grant};
use crate::feedback::FeedbackDelivery;
use crate::local_hub::{until_true, AmqpReceiver, Shared};
use crate::queue::{Delivery, SendError, Settlement};

/// Largest frame the hub accepts.
const MAX_FRAME: usize = 256 * 1024;
/// The session window the hub grants (in transfer frames), refreshed at half.
const WINDOW: u32 = 5000;
/// Link credit the hub grants on links it receives on, refreshed at half.
const CREDIT: u32 = 100;
/// How much output waits for the frames still queued behind it before it is written anyway.
const FLUSH_AT: usize = 64 * 1024;

/// An error that closes the connection.
struct Fatal(ErrorCondition, String);

fn amqp_error(condition: impl Into<ErrorCondition>, description: impl Into<String>) -> AmqpErr {
    AmqpErr {
        condition: condition.into(),
        description: Some(description.into()),
        info: None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum LinkKind {
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
struct Partial {
    delivery_id: DeliveryNumber,
    settled: bool,
    payload: Vec<u8>,
    too_large: bool,
}

struct Link {
    kind: LinkKind,
    /// Receiving: credit we granted and deliveries received.
    credit: u32,
    delivery_count: u32,
    partial: Option<Partial>,
    /// Sending: credit the peer granted, deliveries sent, drain asked.
    peer_credit: u32,
    sent_count: u32,
    drain: bool,
    fetching: bool,
    /// The last fetch found nothing: wait for a wake-up before fetching again.
    empty: bool,
    /// A wake-up came while a fetch was under way: that fetch's "nothing" may be stale.
    woken_while_fetching: bool,
    ready: Option<Outgoing>,
    /// Forwards the device's queue wake-ups to the connection (device links).
    wake: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(t) = self.wake.take() {
            t.abort();
        }
    }
}

/// A delivery fetched from the store, waiting for credit.
enum Outgoing {
    Feedback(FeedbackDelivery),
    Message(Box<Delivery>),
}

impl Outgoing {
    fn lock_token(&self) -> Uuid {
        match self {
            Outgoing::Feedback(d) => d.lock_token,
            Outgoing::Message(d) => d.lock_token,
        }
    }
}

impl Link {
    fn new(kind: LinkKind) -> Self {
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

struct Session {
    next_outgoing_id: u32,
    next_incoming_id: u32,
    incoming_window: u32,
    remote_incoming_window: u32,
    next_delivery_id: u32,
    links: HashMap<u32, Link>,
    /// Our unsettled deliveries: delivery id → (link handle, lock token).
    unsettled: HashMap<u32, (u32, Uuid)>,
}

enum Done {
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

struct Conn<W> {
    shared: Arc<Shared>,
    writer: W,
    out: Vec<u8>,
    peer: String,
    remote_max_frame: usize,
    remote_idle: Option<Duration>,
    sessions: HashMap<u16, Session>,
    grants: Vec<Grant>,
    /// The client certificates of the TLS connection: a device link without a token is
    /// authenticated by them.
    certificates: crate::x509::PeerCertificates,
    cbs_replies: VecDeque<(Option<String>, AmqpMessage)>,
    pending: FuturesUnordered<BoxFuture<'static, Done>>,
    control: mpsc::UnboundedSender<Control>,
    opened: bool,
}

pub(super) async fn run<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: String,
    sasl_grant: Option<Grant>,
    certificates: crate::x509::PeerCertificates,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Result<RawFrame, String>>(64);
    // aborted however this task ends (it may be dropped when the hub stops): the reader
    // holds half of the socket, which must close with the connection
    let _reader = AbortOnDrop(tokio::spawn(async move {
        loop {
            let frame = frames::read_frame(&mut reader, MAX_FRAME).await;
            let end = !matches!(frame, Ok(Some(_)));
            let item = match frame {
                Ok(Some(f)) => Ok(f),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if tx.send(item).await.is_err() || end {
                break;
            }
        }
    }));
    let (control, mut control_rx) = mpsc::unbounded_channel();
    let mut conn: Conn<WriteHalf<S>> = Conn {
        shared: shared.clone(),
        writer,
        out: Vec::with_capacity(8192),
        peer,
        remote_max_frame: 512,
        remote_idle: None,
        sessions: HashMap::new(),
        grants: sasl_grant.into_iter().collect(),
        certificates,
        cbs_replies: VecDeque::new(),
        pending: FuturesUnordered::new(),
        control,
        opened: false,
    };
    let mut feedback_wake = shared.store.waker().feedback();
    let mut shutdown = shared.shutdown_signal();
    let mut heartbeat: Option<tokio::time::Interval> = None;
    let mut auth_check = tokio::time::interval(Duration::from_secs(5));
    let result: Result<(), Fatal> = loop {
        // what is ready now is answered before anything is written, so that the answers to
        // a burst of transfers (their dispositions, the next deliveries) share TLS records
        // and syscalls instead of taking one each
        while let Some(Some(done)) = conn.pending.next().now_or_never() {
            conn.on_done(done);
        }
        if (rx.is_empty() || conn.out.len() >= FLUSH_AT) && conn.flush().await.is_err() {
            break Ok(());
        }
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(Ok(f)) => {
                    match conn.on_frame(f) {
                        Ok(true) => {}
                        Ok(false) => break Ok(()),
                        Err(fatal) => break Err(fatal),
                    }
                    if heartbeat.is_none() {
                        heartbeat = conn.heartbeat_interval();
                    }
                }
                Some(Err(e)) => break Err(Fatal(AmqpError::DecodeError.into(), e)),
                None => break Ok(()),
            },
            Some(done) = conn.pending.next(), if !conn.pending.is_empty() => conn.on_done(done),
            changed = feedback_wake.changed() => {
                if changed.is_ok() {
                    conn.wake(|k| matches!(k, LinkKind::Feedback { .. }));
                }
            }
            Some(control) = control_rx.recv() => match control {
                Control::Wake(device) => conn.wake(|k| matches!(k, LinkKind::DeviceReceive { device: d, .. } if *d == device)),
                Control::Steal(owner) => conn.steal(owner),
            },
            _ = async { heartbeat.as_mut().expect("guarded").tick().await }, if heartbeat.is_some() => {
                frames::heartbeat(&mut conn.out);
            }
            _ = auth_check.tick() => {
                if let Err(fatal) = conn.check_auth() {
                    break Err(fatal);
                }
            }
            _ = until_true(&mut shutdown) => {
                break Err(Fatal(ConnectionError::ConnectionForced.into(), "the hub is shutting down".into()));
            }
        }
    };
    if let Err(Fatal(condition, description)) = result {
        tracing::warn!(peer = %conn.peer, %description, "AMQP: closing the connection");
        frames::amqp_frame(
            0,
            &Close {
                error: Some(amqp_error(condition, description)),
            },
            &[],
            &mut conn.out,
        );
    }
    let _ = conn.flush().await;
    let _ = conn.writer.shutdown().await;
    // finish the store operations under way, then give back what this connection held
    while conn.pending.next().await.is_some() {}
    let kinds: Vec<LinkKind> = conn
        .sessions
        .values()
        .flat_map(|s| s.links.values().map(|l| l.kind.clone()))
        .collect();
    for kind in kinds {
        if let Some(release) = release_of(&shared, &kind) {
            release.await;
        }
    }
    tracing::debug!(peer = %conn.peer, "AMQP: connection ended");
}

impl<W: AsyncWrite + Unpin> Conn<W> {
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.writer.write_all(&self.out).await?;
        self.out.clear();
        self.writer.flush().await
    }

    /// Empty frames at half the peer's idle timeout keep the connection open.
    fn heartbeat_interval(&self) -> Option<tokio::time::Interval> {
        let period = self.remote_idle? / 2;
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Some(i)
    }

    fn send(&mut self, channel: u16, performative: &impl serde::Serialize) {
        frames::amqp_frame(channel, performative, &[], &mut self.out);
    }

    fn authorized(&self, access: Access<'_>) -> bool {
        let now = self
            .shared
            .store
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.grants.iter().any(|g| {
            now <= g.expiry.saturating_add(c2d::sas::MAX_CLOCK_SKEW_SECS)
                && g.check(&self.shared.host_name, access).is_ok()
        })
    }

    /// Closes the connection when the tokens behind its links have expired.
    fn check_auth(&self) -> Result<(), Fatal> {
        let expired = self
            .sessions
            .values()
            .flat_map(|s| s.links.values())
            .any(|l| match &l.kind {
                LinkKind::C2dSend | LinkKind::Feedback { .. } => !self.authorized(Access::Service),
                LinkKind::DeviceReceive { device, .. } => !self.authorized(Access::Device(device)),
                _ => false,
            });
        if expired {
            return Err(Fatal(
                AmqpError::UnauthorizedAccess.into(),
                "the connection's token has expired".into(),
            ));
        }
        Ok(())
    }

    /// Marks matching links as worth fetching for again, and pumps.
    fn wake(&mut self, which: impl Fn(&LinkKind) -> bool) {
        for link in self
            .sessions
            .values_mut()
            .flat_map(|s| s.links.values_mut())
        {
            if which(&link.kind) {
                link.empty = false;
                link.woken_while_fetching = link.fetching;
            }
        }
        self.pump();
    }

    /// Another link of the same device replaced this one: detach it as stolen.
    fn steal(&mut self, owner: u64) {
        let found = self.sessions.iter().find_map(|(ch, s)| {
            s.links.iter().find_map(|(h, l)| match &l.kind {
                LinkKind::DeviceReceive { owner: o, .. } if *o == owner => Some((*ch, *h)),
                _ => None,
            })
        });
        let Some((channel, handle)) = found else {
            return;
        };
        tracing::info!(peer = %self.peer, "AMQP: a new receiving link replaces this device's link");
        let error = amqp_error(
            LinkError::Stolen,
            "a new receiving link for this device replaced this one",
        );
        self.detach(channel, handle, error);
        self.remove_link(channel, handle);
    }

    /// Forgets a link and gives back what it held.
    fn remove_link(&mut self, channel: u16, handle: u32) -> Option<LinkKind> {
        let session = self.sessions.get_mut(&channel)?;
        let link = session.links.remove(&handle)?;
        session.unsettled.retain(|_, (h, _)| *h != handle);
        if let Some(release) = release_of(&self.shared, &link.kind) {
            self.pending.push(Box::pin(async move {
                release.await;
                Done::Nothing
            }));
        }
        Some(link.kind.clone())
    }

    /// Handles one frame; `Ok(false)` when the connection is closed.
    fn on_frame(&mut self, frame: RawFrame) -> Result<bool, Fatal> {
        let channel = frame.channel;
        let Some((performative, payload)) =
            frames::decode_amqp(frame).map_err(|e| Fatal(AmqpError::DecodeError.into(), e))?
        else {
            return Ok(true); // heartbeat
        };
        tracing::trace!(peer = %self.peer, channel, ?performative, "AMQP: received");
        if !self.opened && !matches!(performative, Performative::Open(_)) {
            return Err(Fatal(
                AmqpError::IllegalState.into(),
                "the first frame must be open".into(),
            ));
        }
        match performative {
            Performative::Open(open) => self.on_open(open)?,
            Performative::Begin(begin) => self.on_begin(channel, begin),
            Performative::Attach(attach) => self.on_attach(channel, attach)?,
            Performative::Flow(flow) => self.on_flow(channel, flow)?,
            Performative::Transfer(transfer) => self.on_transfer(channel, transfer, &payload)?,
            Performative::Disposition(d) => self.on_disposition(channel, d)?,
            Performative::Detach(detach) => self.on_detach(channel, detach),
            Performative::End(_) => self.on_end(channel),
            Performative::Close(close) => {
                if let Some(e) = close.error {
                    tracing::debug!(peer = %self.peer, error = ?e, "AMQP: peer closed with an error");
                }
                self.send(0, &Close { error: None });
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn on_open(&mut self, open: Open) -> Result<(), Fatal> {
        if self.opened {
            return Err(Fatal(
                AmqpError::IllegalState.into(),
                "a second open".into(),
            ));
        }
        self.opened = true;
        self.remote_max_frame = (open.max_frame_size.0 as usize).max(512);
        let reply = Open {
            container_id: format!("c2d-hub-{}", Uuid::new_v4().simple()),
            hostname: None,
            max_frame_size: MaxFrameSize(MAX_FRAME as u32),
            channel_max: ChannelMax(u16::MAX),
            idle_time_out: None,
            outgoing_locales: None,
            incoming_locales: None,
            offered_capabilities: None,
            desired_capabilities: None,
            properties: None,
        };
        self.send(0, &reply);
        self.remote_idle = open
            .idle_time_out
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(u64::from(ms)));
        Ok(())
    }

    fn on_begin(&mut self, channel: u16, begin: Begin) {
        self.sessions.insert(
            channel,
            Session {
                next_outgoing_id: 0,
                next_incoming_id: begin.next_outgoing_id,
                incoming_window: WINDOW,
                remote_incoming_window: begin.incoming_window,
                next_delivery_id: 0,
                links: HashMap::new(),
                unsettled: HashMap::new(),
            },
        );
        let reply = Begin {
            remote_channel: Some(channel),
            next_outgoing_id: 0,
            incoming_window: WINDOW,
            outgoing_window: WINDOW,
            handle_max: Handle(u32::MAX),
            offered_capabilities: None,
            desired_capabilities: None,
            properties: None,
        };
        self.send(channel, &reply);
    }

    fn session(&mut self, channel: u16) -> Result<&mut Session, Fatal> {
        self.sessions.get_mut(&channel).ok_or_else(|| {
            Fatal(
                ConnectionError::FramingError.into(),
                format!("no session on channel {channel}"),
            )
        })
    }

    fn on_attach(&mut self, channel: u16, attach: Attach) -> Result<(), Fatal> {
        let handle = attach.handle.0;
        let we_receive = attach.role == Role::Sender;
        let address = if we_receive {
            attach.target.as_ref().and_then(|t| match t.as_ref() {
                fe2o3_amqp_types::messaging::TargetArchetype::Target(t) => t.address.clone(),
                #[allow(unreachable_patterns)]
                _ => None,
            })
        } else {
            attach.source.as_ref().and_then(|s| s.address.clone())
        }
        .unwrap_or_default();
        let path = convert::address_path(&address).to_ascii_lowercase();
        let (kind, refusal) = if address == "$cbs" {
            if we_receive {
                (LinkKind::CbsRequests, None)
            } else {
                let reply_to = attach.target.as_ref().and_then(|t| match t.as_ref() {
                    fe2o3_amqp_types::messaging::TargetArchetype::Target(t) => t.address.clone(),
                    #[allow(unreachable_patterns)]
                    _ => None,
                });
                (LinkKind::CbsReplies { address: reply_to }, None)
            }
        } else if we_receive && path == "/messages/devicebound" {
            if self.authorized(Access::Service) {
                (LinkKind::C2dSend, None)
            } else {
                (LinkKind::Refused, Some(amqp_error(AmqpError::UnauthorizedAccess, "sending C2D messages needs a ServiceConnect token (CBS put-token or SASL PLAIN)")))
            }
        } else if let (false, Some(device)) = (we_receive, convert::device_of_to(&address)) {
            if !self.authorized(Access::Device(&device)) && self.certificates.is_some() {
                // no token for the device: its certificate, if it has one
                match self.shared.authorize_x509(&device, &self.certificates) {
                    Ok(grant) => self.grants.push(grant),
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, %device, error = %e, "AMQP: X.509 authentication refused")
                    }
                }
            }
            if self.authorized(Access::Device(&device)) {
                (
                    LinkKind::DeviceReceive {
                        device,
                        owner: self.shared.new_owner(),
                    },
                    None,
                )
            } else {
                let why = format!("receiving for device '{device}' needs that device's token (CBS put-token or SASL PLAIN) or certificate");
                (
                    LinkKind::Refused,
                    Some(amqp_error(AmqpError::UnauthorizedAccess, why)),
                )
            }
        } else if !we_receive && path == "/messages/servicebound/feedback" {
            if self.authorized(Access::Service) {
                (
                    LinkKind::Feedback {
                        owner: self.shared.new_owner(),
                    },
                    None,
                )
            } else {
                (LinkKind::Refused, Some(amqp_error(AmqpError::UnauthorizedAccess, "reading feedback needs a ServiceConnect token (CBS put-token or SASL PLAIN)")))
            }
        } else {
            (
                LinkKind::Refused,
                Some(amqp_error(
                    AmqpError::NotFound,
                    format!(
                        "no {} node at '{address}'",
                        if we_receive { "target" } else { "source" }
                    ),
                )),
            )
        };
        if let Some(e) = &refusal {
            tracing::warn!(peer = %self.peer, %address, error = ?e.description, "AMQP: link refused");
        } else {
            tracing::debug!(peer = %self.peer, %address, ?kind, "AMQP: link attached");
        }
        let reply = Attach {
            name: attach.name.clone(),
            handle: Handle(handle),
            role: if we_receive {
                Role::Receiver
            } else {
                Role::Sender
            },
            snd_settle_mode: attach.snd_settle_mode.clone(),
            rcv_settle_mode: attach.rcv_settle_mode.clone(),
            // a refused link is answered with a null terminus on our side (AMQP 1.0, 2.6.3),
            // so that the client waits for the detach and its error
            source: if refusal.is_some() && !we_receive {
                None
            } else {
                attach.source.clone()
            },
            target: if refusal.is_some() && we_receive {
                None
            } else {
                attach.target.clone()
            },
            unsettled: None,
            incomplete_unsettled: false,
            initial_delivery_count: if we_receive { None } else { Some(0) },
            // no limit is announced: the hub checks sizes itself and answers with IoT Hub's
            // error, rather than have clients refuse locally
            max_message_size: None,
            offered_capabilities: None,
            desired_capabilities: None,
            properties: None,
        };
        self.send(channel, &reply);
        let mut link = Link::new(kind);
        if let LinkKind::DeviceReceive { device, owner } = &link.kind {
            // one receiving link per device: the newest wins
            let transport = crate::local_hub::transport_of(&self.peer, false);
            let me = AmqpReceiver {
                control: self.control.clone(),
                presence: self.shared.presence_now(*owner, transport),
            };
            if let Some(old) = self.shared.replace_amqp_receiver(device, me) {
                let _ = old.control.send(Control::Steal(old.presence.owner));
            }
            let mut changes = self.shared.store.waker().device(device);
            let (control, device) = (self.control.clone(), device.clone());
            link.wake = Some(tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    if control.send(Control::Wake(device.clone())).is_err() {
                        break;
                    }
                }
            }));
        }
        if let Some(error) = refusal {
            self.detach(channel, handle, error);
        } else if we_receive {
            link.delivery_count = attach.initial_delivery_count.unwrap_or(0);
            link.credit = CREDIT;
        }
        let grant_credit = we_receive && link.kind != LinkKind::Refused;
        let delivery_count = link.delivery_count;
        let session = self.session(channel)?;
        session.links.insert(handle, link);
        if grant_credit {
            let flow = link_flow(session, handle, delivery_count, CREDIT);
            self.send(channel, &flow);
        }
        Ok(())
    }

    fn on_flow(&mut self, channel: u16, flow: Flow) -> Result<(), Fatal> {
        let session = self.session(channel)?;
        session.remote_incoming_window = flow
            .next_incoming_id
            .unwrap_or(0)
            .wrapping_add(flow.incoming_window)
            .wrapping_sub(session.next_outgoing_id);
        if let Some(Handle(h)) = flow.handle {
            if let Some(link) = session.links.get_mut(&h) {
                if matches!(
                    link.kind,
                    LinkKind::Feedback { .. }
                        | LinkKind::CbsReplies { .. }
                        | LinkKind::DeviceReceive { .. }
                ) {
                    let their_count = flow.delivery_count.unwrap_or(link.sent_count);
                    link.peer_credit = their_count
                        .wrapping_add(flow.link_credit.unwrap_or(0))
                        .wrapping_sub(link.sent_count);
                    link.drain = flow.drain;
                }
            }
        }
        if flow.echo {
            let reply = session_flow(session);
            self.send(channel, &reply);
        }
        self.send_cbs_replies();
        self.pump();
        Ok(())
    }

    fn on_transfer(&mut self, channel: u16, t: Transfer, payload: &[u8]) -> Result<(), Fatal> {
        let limit = self.shared.store.read(|s| s.limits.max_message_size);
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
    fn on_delivery(&mut self, channel: u16, kind: LinkKind, d: Partial, limit: usize) {
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

    /// Closes a link with an error.
    fn detach(&mut self, channel: u16, handle: u32, error: AmqpErr) {
        let detach = Detach {
            handle: Handle(handle),
            closed: true,
            error: Some(error),
        };
        self.send(channel, &detach);
    }

    /// Settles one delivery: ours (`Role::Sender`) or the peer's (`Role::Receiver`).
    fn dispose(&mut self, channel: u16, role: Role, delivery_id: u32, state: DeliveryState) {
        let d = Disposition {
            role,
            first: delivery_id,
            last: None,
            settled: true,
            state: Some(state),
            batchable: false,
        };
        self.send(channel, &d);
    }

    /// Handles a CBS request; returns the reply.
    fn put_token(&mut self, m: &AmqpMessage) -> AmqpMessage {
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
        let now = self.shared.store.now();
        let grant = self
            .shared
            .store
            .read(|s| crate::auth::authenticate(&s.registry, &self.shared.host_name, &token, now));
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

    /// Queues a service's message; returns the outcome now when it is known without the
    /// store (or `None` when the store will answer).
    fn c2d_send(&mut self, channel: u16, d: &Partial, limit: usize) -> Option<DeliveryState> {
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
        let store = self.shared.store.clone();
        let delivery_id = d.delivery_id;
        let settled = d.settled;
        self.pending.push(Box::pin(async move {
            let result = store
                .exec(move |s, now| s.send(now, &device, message))
                .await;
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

    fn on_disposition(&mut self, channel: u16, d: Disposition) -> Result<(), Fatal> {
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
            let store = self.shared.store.clone();
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
                            .exec(move |s, now| s.settle(now, &device, token, how))
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

    fn on_detach(&mut self, channel: u16, detach: Detach) {
        let handle = detach.handle.0;
        if let Some(kind) = self.remove_link(channel, handle) {
            if kind != LinkKind::Refused {
                let reply = Detach {
                    handle: Handle(handle),
                    closed: detach.closed,
                    error: None,
                };
                self.send(channel, &reply);
            }
        }
    }

    fn on_end(&mut self, channel: u16) {
        let handles: Vec<u32> = self
            .sessions
            .get(&channel)
            .map(|s| s.links.keys().copied().collect())
            .unwrap_or_default();
        for h in handles {
            self.remove_link(channel, h);
        }
        self.sessions.remove(&channel);
        self.send(channel, &End { error: None });
    }

    fn on_done(&mut self, done: Done) {
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
                        let store = self.shared.store.clone();
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
    fn pump(&mut self) {
        let hub_name = c2d::connection_string::hub_name_of(&self.shared.host_name).to_string();
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
                        Fetch::Device(device.clone(), *owner)
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
                    let store = self.shared.store.clone();
                    self.pending.push(Box::pin(async move {
                        let (owner, item) = match fetch {
                            Fetch::Feedback(owner) => {
                                let d = store
                                    .exec(move |s, now| s.feedback_receive(now, owner))
                                    .await;
                                (owner, d.ok().flatten().map(Outgoing::Feedback))
                            }
                            Fetch::Device(device, owner) => {
                                let d = store.apply(move |s, now| s.receive(now, &device, owner));
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

    /// Sends queued CBS replies on a `$cbs` receiver link with credit.
    fn send_cbs_replies(&mut self) {
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

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a sending link fetches from the store.
enum Fetch {
    Feedback(u64),
    Device(String, u64),
}

/// The answer to a settlement whose lock is gone.
fn lock_lost() -> DeliveryState {
    DeliveryState::Rejected(Rejected {
        error: Some(amqp_error(
            ErrorCondition::Custom(fe2o3_amqp_types::primitives::Symbol::from(
                "com.microsoft:message-lock-lost",
            )),
            "the message lock was lost or has expired",
        )),
    })
}

/// Gives back what a link held: locked messages or feedback go back to their queue, and a
/// device's receiving link stops being the device's.
fn release_of(shared: &Arc<Shared>, kind: &LinkKind) -> Option<BoxFuture<'static, ()>> {
    let store = shared.store.clone();
    match kind.clone() {
        LinkKind::Feedback { owner } => Some(Box::pin(async move {
            let _ = store
                .exec(move |s, _| s.feedback_release_owner(owner))
                .await;
        })),
        LinkKind::DeviceReceive { device, owner } => {
            shared.end_amqp_receiver(&device, owner);
            Some(Box::pin(async move {
                let _ = store.exec(move |s, now| s.release_owner(now, owner)).await;
            }))
        }
        _ => None,
    }
}

fn session_flow(session: &Session) -> Flow {
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

fn link_flow(session: &Session, handle: u32, delivery_count: u32, credit: u32) -> Flow {
    Flow {
        handle: Some(Handle(handle)),
        delivery_count: Some(delivery_count),
        link_credit: Some(credit),
        ..session_flow(session)
    }
}

/// Writes one delivery as as many transfer frames as the peer's frame size needs.
#[allow(clippy::too_many_arguments)]
fn transfer(
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
