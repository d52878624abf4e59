//! One AMQP connection: its loop, its frames, its sessions and flow. What happens on its links
//! is in the modules beside it: [`super::attach`] (attach, detach: which link is what, who may
//! make it), [`super::deliveries`] (transfers in both directions and their settlement) and
//! [`super::cbs`] (`put-token`); [`super::session`] holds the data they share.
//!
//! A reader task turns bytes into frames; this task owns all state, answers frames in
//! order, and runs store operations as futures whose completions (a send committed, a
//! feedback batch fetched or settled) come back into the same loop, so one connection can
//! have many sends committing at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use fe2o3_amqp_types::definitions::{AmqpError, ConnectionError, Error as AmqpErr, Handle, Role};
use fe2o3_amqp_types::messaging::DeliveryState;
use fe2o3_amqp_types::performatives::{
    Begin, ChannelMax, Close, Detach, Disposition, End, Flow, MaxFrameSize, Open, Performative,
};
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::convert::AmqpMessage;
use super::frames::{self, RawFrame};
use super::session::{
    amqp_error, release_of, session_flow, Done, Fatal, LinkKind, Session, FLUSH_AT, MAX_FRAME,
    WINDOW,
};
use super::Control;
use crate::auth::{Access, Grant};
use crate::context::{until_true, HubContext};
use crate::sessions::{Peer, SessionSignal};

pub(super) struct Conn<W> {
    pub(super) ctx: Arc<HubContext>,
    /// The socket's write half (gone once a fault dropped the connection).
    pub(super) writer: Option<W>,
    pub(super) out: Vec<u8>,
    pub(super) peer: Peer,
    pub(super) remote_max_frame: usize,
    pub(super) remote_idle: Option<Duration>,
    pub(super) sessions: HashMap<u16, Session>,
    pub(super) grants: Vec<Grant>,
    /// The client certificates of the TLS connection: a device link without a token is
    /// authenticated by them.
    pub(super) certificates: crate::auth::x509::PeerCertificates,
    pub(super) cbs_replies: VecDeque<(Option<String>, AmqpMessage)>,
    pub(super) pending: FuturesUnordered<BoxFuture<'static, Done>>,
    pub(super) control: mpsc::UnboundedSender<Control>,
    pub(super) opened: bool,
}

pub(super) async fn run<S>(
    ctx: Arc<HubContext>,
    stream: S,
    peer: Peer,
    sasl_grant: Option<Grant>,
    certificates: crate::auth::x509::PeerCertificates,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Result<RawFrame, String>>(64);
    // aborted however this task ends (it may be dropped when the hub stops): the reader
    // holds half of the socket, which must close with the connection
    let reader_task = AbortOnDrop(tokio::spawn(async move {
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
        ctx: ctx.clone(),
        writer: Some(writer),
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
    let mut feedback_wake = ctx.store.waker().feedback();
    let mut shutdown = ctx.shutdown_signal();
    let mut heartbeat: Option<tokio::time::Interval> = None;
    let mut auth_check = tokio::time::interval(Duration::from_secs(5));
    // a fault dropped the connection: it ends as a network drop does, with nothing more sent
    let mut dropped = false;
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
                Control::Signal(_, SessionSignal::Dropped { polite: true }) => {
                    break Err(Fatal(ConnectionError::ConnectionForced.into(), "the connection was closed by a fault".into()));
                }
                Control::Signal(_, SessionSignal::Dropped { polite: false }) => {
                    tracing::info!(peer = %conn.peer, "AMQP: dropping the connection (a fault): no close frame");
                    dropped = true;
                    break Ok(());
                }
                Control::Signal(owner, signal) => conn.signalled(owner, signal),
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
    if dropped {
        // the socket goes now, with nothing written, before the store gives back what the
        // connection held (a stalled store must not keep it open)
        conn.writer = None;
        drop(reader_task);
    } else {
        let _ = conn.flush().await;
        if let Some(w) = conn.writer.as_mut() {
            let _ = w.shutdown().await;
        }
    }
    // finish the store operations under way, then give back what this connection held
    while conn.pending.next().await.is_some() {}
    let kinds: Vec<LinkKind> = conn
        .sessions
        .values()
        .flat_map(|s| s.links.values().map(|l| l.kind.clone()))
        .collect();
    for kind in kinds {
        if let Some(release) = release_of(&ctx, &kind) {
            release.await;
        }
    }
    tracing::debug!(peer = %conn.peer, "AMQP: connection ended");
}

impl<W: AsyncWrite + Unpin> Conn<W> {
    pub(super) async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            self.out.clear();
            return Ok(());
        };
        writer.write_all(&self.out).await?;
        self.out.clear();
        writer.flush().await
    }

    /// Empty frames at half the peer's idle timeout keep the connection open.
    pub(super) fn heartbeat_interval(&self) -> Option<tokio::time::Interval> {
        let period = self.remote_idle? / 2;
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Some(i)
    }

    pub(super) fn send(&mut self, channel: u16, performative: &impl serde::Serialize) {
        frames::amqp_frame(channel, performative, &[], &mut self.out);
    }

    pub(super) fn authorized(&self, access: Access<'_>) -> bool {
        let now = self
            .ctx
            .store
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.grants.iter().any(|g| {
            now <= g.expiry.saturating_add(c2d::sas::MAX_CLOCK_SKEW_SECS)
                && g.check(&self.ctx.host_name, access).is_ok()
        })
    }

    /// Closes the connection when the tokens behind its links have expired.
    pub(super) fn check_auth(&self) -> Result<(), Fatal> {
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
    pub(super) fn wake(&mut self, which: impl Fn(&LinkKind) -> bool) {
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

    /// Handles one frame; `Ok(false)` when the connection is closed.
    pub(super) fn on_frame(&mut self, frame: RawFrame) -> Result<bool, Fatal> {
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

    pub(super) fn on_open(&mut self, open: Open) -> Result<(), Fatal> {
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

    pub(super) fn on_begin(&mut self, channel: u16, begin: Begin) {
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

    pub(super) fn session(&mut self, channel: u16) -> Result<&mut Session, Fatal> {
        self.sessions.get_mut(&channel).ok_or_else(|| {
            Fatal(
                ConnectionError::FramingError.into(),
                format!("no session on channel {channel}"),
            )
        })
    }

    pub(super) fn on_flow(&mut self, channel: u16, flow: Flow) -> Result<(), Fatal> {
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

    /// Closes a link with an error.
    pub(super) fn detach(&mut self, channel: u16, handle: u32, error: AmqpErr) {
        let detach = Detach {
            handle: Handle(handle),
            closed: true,
            error: Some(error),
        };
        self.send(channel, &detach);
    }

    /// Settles one delivery: ours (`Role::Sender`) or the peer's (`Role::Receiver`).
    pub(super) fn dispose(
        &mut self,
        channel: u16,
        role: Role,
        delivery_id: u32,
        state: DeliveryState,
    ) {
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

    pub(super) fn on_end(&mut self, channel: u16) {
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
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
