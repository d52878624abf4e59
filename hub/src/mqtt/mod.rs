//! The MQTT 3.1.1 device endpoint.
//!
//! One task per connection reads packets, and between reads delivers the device's queued
//! messages as QoS 1 PUBLISHes while fewer than the in-flight window are unacknowledged. A
//! PUBACK completes its message (PUBACKs come in order; one out of order still completes its
//! own message); when the connection ends, whatever is still in flight goes back to the queue
//! for the next connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use c2d::message::device_bound_address;
use c2d::property_bag;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PingResp, Publish, SubAck, SubscribeReasonCode, UnsubAck,
};
use rumqttc::mqttbytes::{Error as CodecError, Protocol, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::auth::Access;
use crate::context::HubContext;
use crate::sessions::{DeviceSession, Peer, SessionSignal};
use crate::state::{Delivery, Settlement};

/// Largest packet a device may send (IoT Hub's device-to-cloud limit is 256 KB).
const MAX_INCOMING_PACKET: usize = 256 * 1024 + 1024;
/// How long a new connection has to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest keep-alive timeout IoT Hub applies (its load balancer's idle limit).
const MAX_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(1767);

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The device sent DISCONNECT or closed the socket.
    Closed,
    /// Another connection for the same device replaced this one.
    Replaced,
    /// The device was deleted.
    DeviceDeleted,
    /// The hub is stopping (its store closed).
    HubStopping,
    /// The device broke a rule; the connection is closed.
    Violation(String),
    /// No packet within 1.5 × keep-alive.
    KeepAliveTimeout,
    /// The SAS token of the CONNECT expired (plus the allowed skew); the device must
    /// reconnect with a new one.
    TokenExpired,
    /// A fault dropped the connection: `polite`, with TLS's close_notify (MQTT 3.1.1 has no
    /// server DISCONNECT); otherwise the socket just goes, as in a network drop.
    Dropped {
        /// Closed politely.
        polite: bool,
    },
}

struct InFlight {
    pkid: u16,
    lock_token: Uuid,
    /// When the message's lock ends (the hub's clock).
    lock_expires: std::time::SystemTime,
}

/// Serves one device connection (after TLS, or inside a WebSocket).
///
/// The stream is split here, before the session's future is made: a stream argument of an
/// async fn keeps a slot of the stream's size in its future for the connection's life,
/// moved from or not (1.2 KiB for a TLS stream, of an idle connection's 14).
pub(crate) fn serve<S>(
    ctx: Arc<HubContext>,
    stream: S,
    peer: Peer,
    certificates: crate::auth::x509::PeerCertificates,
) -> impl std::future::Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (reader, writer) = tokio::io::split(stream);
    session(ctx, reader, writer, peer, certificates)
}

async fn session<S>(
    ctx: Arc<HubContext>,
    mut reader: tokio::io::ReadHalf<S>,
    mut writer: tokio::io::WriteHalf<S>,
    peer: Peer,
    certificates: crate::auth::x509::PeerCertificates,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // big enough for a CONNECT with its SAS token; made small once the session runs
    let mut buf = BytesMut::with_capacity(512);
    let connect = match tokio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut reader, &mut buf))
        .await
    {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return,
        Ok(Err(ConnectError::Level(level))) => {
            tracing::warn!(%peer, level, "MQTT: refusing a protocol level other than 4 (MQTT 3.1.1)");
            ctx.refuse("protocol");
            let _ = write_packet(&mut writer, |b| {
                ConnAck::new(ConnectReturnCode::RefusedProtocolVersion, false).write(b)
            })
            .await;
            let _ = writer.shutdown().await;
            return;
        }
        Ok(Err(ConnectError::Other(e))) => {
            tracing::warn!(%peer, error = %e, "MQTT: no valid CONNECT; closing");
            let _ = writer.shutdown().await;
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, "MQTT: no CONNECT within 10 s; closing");
            return;
        }
    };
    let (device_id, token_expiry) = match check_connect(&ctx, &connect, &certificates) {
        Ok(x) => x,
        Err(why) => {
            tracing::warn!(%peer, client_id = %connect.client_id, reason = %why, "MQTT: CONNECT refused (CONNACK 5)");
            let _ = write_packet(&mut writer, |b| {
                ConnAck::new(ConnectReturnCode::NotAuthorized, false).write(b)
            })
            .await;
            let _ = writer.shutdown().await;
            return;
        }
    };
    // what the session needs of the CONNECT: the rest (the token, the names) is not kept
    let (clean_session, keep_alive_secs) = (connect.clean_session, connect.keep_alive);
    drop(connect);

    let owner = ctx.sessions.new_owner();
    let (signal_tx, signal_rx) = oneshot::channel::<SessionSignal>();
    let (done_tx, done_rx) = oneshot::channel();
    let previous = ctx.sessions.replace_mqtt(
        &device_id,
        DeviceSession {
            presence: ctx.presence_now(owner, peer.mqtt_transport()),
            notify: Some(Box::new(move |signal| {
                let _ = signal_tx.send(signal);
            })),
            done: Some(done_rx),
        },
    );
    if let Some(mut old) = previous {
        tracing::info!(device = %device_id, "MQTT: a new connection replaces the device's previous one");
        old.signal(SessionSignal::Replaced);
        if let Some(done) = old.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }
    let session_present = ctx.sessions.begin_mqtt(&device_id, clean_session);
    if write_packet(&mut writer, |b| {
        ConnAck::new(ConnectReturnCode::Success, session_present).write(b)
    })
    .await
    .is_err()
    {
        finish(&ctx, &device_id, owner, clean_session, done_tx).await;
        return;
    }
    tracing::info!(%peer, device = %device_id, clean_session, keep_alive = keep_alive_secs, "MQTT: device connected");

    let keep_alive = match keep_alive_secs {
        0 => None,
        k => Some((Duration::from_secs(u64::from(k)) * 3 / 2).min(MAX_KEEP_ALIVE_TIMEOUT)),
    };
    // an idle device sends little more than PINGREQ and PUBACK: a read reserves 64 bytes
    // at a time, and the buffer grows only for larger packets
    if buf.is_empty() {
        buf = BytesMut::new();
    }
    let mut conn = Connection {
        ctx: ctx.clone(),
        device_id: device_id.clone(),
        owner,
        in_flight: VecDeque::new(),
        next_pkid: 1,
    };
    let end = conn
        .run(
            &mut reader,
            &mut writer,
            &mut buf,
            keep_alive,
            token_expiry,
            signal_rx,
        )
        .await;
    match &end {
        End::Closed => tracing::info!(device = %device_id, "MQTT: device disconnected"),
        End::Violation(why) => {
            tracing::warn!(device = %device_id, reason = %why, "MQTT: connection closed")
        }
        other => tracing::info!(device = %device_id, reason = ?other, "MQTT: connection closed"),
    }
    if !matches!(end, End::Dropped { polite: false }) {
        let _ = writer.shutdown().await;
    }
    // the socket goes now, before the store gives back what the session held (a stalled
    // store must not keep it open)
    drop((reader, writer));
    finish(&ctx, &device_id, owner, clean_session, done_tx).await;
}

/// Returns in-flight messages to the queue and ends the session.
async fn finish(
    ctx: &HubContext,
    device_id: &str,
    owner: u64,
    clean_session: bool,
    done: oneshot::Sender<()>,
) {
    if let Err(e) = ctx
        .store
        .exec(move |s, now| s.release_owner(now, owner))
        .await
    {
        tracing::error!(error = %e, "MQTT: could not return in-flight messages to the queue");
    }
    ctx.sessions.end_mqtt(device_id, owner, clean_session);
    let _ = done.send(());
}

/// Checks client id, user name and SAS password (or, without a password, the connection's
/// client certificate); returns the device id and when its token (or certificate) expires
/// (Unix seconds).
fn check_connect(
    ctx: &HubContext,
    c: &rumqttc::mqttbytes::v4::Connect,
    certificates: &crate::auth::x509::PeerCertificates,
) -> Result<(String, u64), String> {
    let client_id = c.client_id.as_str();
    if client_id.contains('/') {
        return Err("module identities do not receive C2D messages on this hub".into());
    }
    c2d::identity::validate_id(client_id)?;
    if let Some(login) = &c.login {
        // {host}/{clientId}/?api-version=…  (the host part and the query are not checked)
        let after_host = login
            .username
            .split_once('/')
            .map(|(_, rest)| rest)
            .unwrap_or("");
        let named = after_host.split('/').next().unwrap_or("");
        if named != client_id {
            return Err(format!(
                "user name '{}' does not name client id '{client_id}'",
                login.username
            ));
        }
    }
    let grant = match c.login.as_ref().filter(|l| !l.password.is_empty()) {
        Some(login) => ctx.authorize(&login.password, Access::Device(client_id)),
        None if certificates.is_some() => ctx.authorize_x509(client_id, certificates),
        None => return Err("no SAS token (password) and no client certificate".into()),
    }
    .map_err(|e| e.to_string())?;
    Ok((client_id.to_string(), grant.expiry))
}

struct Connection {
    ctx: Arc<HubContext>,
    device_id: String,
    owner: u64,
    in_flight: VecDeque<InFlight>,
    next_pkid: u16,
}

impl Connection {
    async fn run<R, W>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        buf: &mut BytesMut,
        keep_alive: Option<Duration>,
        token_expiry: u64,
        mut signal: oneshot::Receiver<SessionSignal>,
    ) -> End
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut wake = self.ctx.store.waker().device(&self.device_id);
        // only what the device sends counts as activity for the keep-alive
        let mut last_heard = tokio::time::Instant::now();
        // (the hub's shutdown is not awaited here: the connection's task ends with it)
        loop {
            if let Err(end) = self.deliver(writer).await {
                return end;
            }
            tokio::select! {
                packet = read_packet(reader, buf) => match packet {
                    Ok(Some(p)) => {
                        last_heard = tokio::time::Instant::now();
                        // and every other whole packet already read (a malformed one is
                        // reported by the next read_packet)
                        let mut packets = vec![p];
                        while let Ok(p) = Packet::read(buf, MAX_INCOMING_PACKET) {
                            packets.push(p);
                        }
                        if let Err(end) = self.on_packets(packets, writer).await {
                            return end;
                        }
                    }
                    Ok(None) => return End::Closed,
                    Err(e) => return End::Violation(e),
                },
                changed = wake.changed() => if changed.is_err() { return End::HubStopping },
                signal = &mut signal => return match signal {
                    Ok(SessionSignal::DeviceDeleted) => End::DeviceDeleted,
                    Ok(SessionSignal::Dropped { polite }) => End::Dropped { polite },
                    Ok(SessionSignal::Replaced) | Err(_) => End::Replaced,
                },
                end = self.timed_out(keep_alive.map(|d| last_heard + d), token_expiry) => return end,
            }
        }
    }

    /// Resolves when the device has been silent past `keep_alive` (tokio's clock) or its
    /// token (or certificate) has expired (the hub's clock), whichever comes first: one
    /// timer for both, as an idle connection's future holds every branch of its select.
    async fn timed_out(&self, keep_alive: Option<tokio::time::Instant>, expiry: u64) -> End {
        let token_deadline = std::time::UNIX_EPOCH
            + Duration::from_secs(expiry.saturating_add(c2d::sas::MAX_CLOCK_SKEW_SECS));
        let mut jumps = self.ctx.store.clock().jumps();
        loop {
            let mut left = match token_deadline.duration_since(self.ctx.store.now()) {
                Ok(left) if !left.is_zero() => left.min(Duration::from_secs(60)),
                _ => return End::TokenExpired,
            };
            if let Some(deadline) = keep_alive {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return End::KeepAliveTimeout;
                }
                left = left.min(deadline - now);
            }
            crate::clock::nap(&mut jumps, left).await;
        }
    }

    /// Publishes queued messages while the window has room.
    async fn deliver<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> Result<(), End> {
        let Some(qos) = self.ctx.sessions.subscription(&self.device_id) else {
            return Ok(());
        };
        let window = self.ctx.mqtt_in_flight;
        if self.in_flight.len() >= window {
            // a message whose lock ended with no PUBACK (its device let it go) is queued
            // again and comes in a new PUBLISH: its slot in the window is free
            let now = self.ctx.store.now();
            self.in_flight.retain(|f| f.lock_expires > now);
        }
        let room = window.saturating_sub(self.in_flight.len());
        if room == 0 {
            return Ok(());
        }
        let (device, owner) = (self.device_id.clone(), self.owner);
        let batch: Vec<Delivery> = self.ctx.store.apply(move |s, now| {
            std::iter::from_fn(|| s.receive(now, &device, owner))
                .take(room)
                .collect()
        });
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(delay) = self.ctx.faults.delay(&self.device_id) {
            // a fault: every delivery to this device is late by `delay` (its lock runs)
            tokio::time::sleep(delay).await;
        }
        // one write (one TLS record, one syscall) for the whole batch
        let mut out = BytesMut::new();
        let mut fire_and_forget = Vec::new();
        for d in batch {
            let topic = format!(
                "devices/{}/messages/devicebound/{}",
                self.device_id,
                property_bag::encode(&d.message, &device_bound_address(&self.device_id))
            );
            let mut publish = Publish::new(topic, qos, d.message.body.clone());
            if qos == QoS::AtLeastOnce {
                publish.pkid = self.take_pkid();
                self.in_flight.push_back(InFlight {
                    pkid: publish.pkid,
                    lock_token: d.lock_token,
                    lock_expires: d.lock_expires,
                });
            } else {
                fire_and_forget.push(d.lock_token);
            }
            publish
                .write(&mut out)
                .map_err(|e| End::Violation(format!("encoding PUBLISH: {e}")))?;
        }
        writer.write_all(&out).await.map_err(|_| End::Closed)?;
        writer.flush().await.map_err(|_| End::Closed)?;
        // QoS 0 is fire-and-forget: published means completed (as IoT Hub's gateway does)
        self.settle(fire_and_forget);
        Ok(())
    }

    fn take_pkid(&mut self) -> u16 {
        loop {
            let id = self.next_pkid;
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.in_flight.iter().any(|f| f.pkid == id) {
                return id;
            }
        }
    }

    /// Completes `tokens` at once, without waiting for their commit: a PUBACK has no answer
    /// to hold back, and a completion that a crash undoes only delivers the message again
    /// (at least once), its feedback record with it.
    fn settle(&self, tokens: Vec<Uuid>) {
        if tokens.is_empty() {
            return;
        }
        let device = self.device_id.clone();
        let expired = self.ctx.store.apply(move |s, now| {
            tokens
                .into_iter()
                .filter(|t| s.settle(now, &device, *t, Settlement::Complete).is_err())
                .count()
        });
        for _ in 0..expired {
            tracing::warn!(device = %self.device_id, "MQTT: PUBACK for a message whose lock had expired; it will be delivered again");
        }
    }

    /// Handles packets in order; consecutive PUBACKs are settled together.
    async fn on_packets<W: AsyncWrite + Unpin>(
        &mut self,
        packets: Vec<Packet>,
        writer: &mut W,
    ) -> Result<(), End> {
        let mut completed = Vec::new();
        for packet in packets {
            match packet {
                Packet::PubAck(ack) => {
                    match self.in_flight.iter().position(|f| f.pkid == ack.pkid) {
                        Some(i) => {
                            if i > 0 {
                                // devices should acknowledge in order; one that skipped a
                                // message (it could not process it) still completes this one,
                                // and the skipped one comes back when its lock ends
                                tracing::debug!(device = %self.device_id, pkid = ack.pkid, "MQTT: PUBACK out of order");
                            }
                            let f = self.in_flight.remove(i).expect("found above");
                            completed.push(f.lock_token);
                        }
                        None => {
                            tracing::warn!(device = %self.device_id, pkid = ack.pkid, "MQTT: PUBACK for no message in flight; ignored")
                        }
                    }
                }
                other => {
                    self.settle(std::mem::take(&mut completed));
                    self.on_packet(other, writer).await?;
                }
            }
        }
        self.settle(completed);
        Ok(())
    }

    async fn on_packet<W: AsyncWrite + Unpin>(
        &mut self,
        packet: Packet,
        writer: &mut W,
    ) -> Result<(), End> {
        match packet {
            Packet::Subscribe(sub) => {
                let codes: Vec<SubscribeReasonCode> = sub
                    .filters
                    .iter()
                    .map(|f| {
                        if is_c2d_filter(&f.path, &self.device_id) {
                            let qos = if f.qos == QoS::AtMostOnce { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                            self.ctx.sessions.subscribe(&self.device_id, qos);
                            SubscribeReasonCode::Success(qos)
                        } else {
                            tracing::warn!(device = %self.device_id, filter = %f.path, "MQTT: subscription to an unsupported topic refused");
                            SubscribeReasonCode::Failure
                        }
                    })
                    .collect();
                let ack = SubAck::new(sub.pkid, codes);
                write_packet(writer, |b| ack.write(b))
                    .await
                    .map_err(|_| End::Closed)
            }
            Packet::Unsubscribe(unsub) => {
                if unsub
                    .topics
                    .iter()
                    .any(|t| is_c2d_filter(t, &self.device_id))
                {
                    self.ctx.sessions.unsubscribe(&self.device_id);
                }
                let ack = UnsubAck::new(unsub.pkid);
                write_packet(writer, |b| ack.write(b))
                    .await
                    .map_err(|_| End::Closed)
            }
            Packet::PingReq => write_packet(writer, |b| PingResp.write(b))
                .await
                .map_err(|_| End::Closed),
            Packet::Disconnect => Err(End::Closed),
            Packet::Publish(p) if p.qos == QoS::ExactlyOnce => {
                Err(End::Violation("PUBLISH with QoS 2".into()))
            }
            Packet::Publish(p) => Err(End::Violation(format!(
                "PUBLISH to '{}': this hub serves cloud-to-device messaging only",
                p.topic
            ))),
            other => Err(End::Violation(format!(
                "unexpected {} packet",
                packet_name(&other)
            ))),
        }
    }
}

/// `devices/{id}/messages/devicebound/#`, with `+` allowed for the id.
fn is_c2d_filter(filter: &str, device_id: &str) -> bool {
    filter
        .strip_prefix("devices/")
        .and_then(|rest| rest.strip_suffix("/messages/devicebound/#"))
        .is_some_and(|id| id == device_id || id == "+")
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

enum ConnectError {
    /// A CONNECT of another protocol level (MQTT 5 is 5, MQTT 3.1 is 3).
    Level(u8),
    Other(String),
}

/// The protocol level of a CONNECT at the start of `buf`, once enough of it has arrived.
fn connect_level(buf: &[u8]) -> Option<Result<u8, String>> {
    let first = *buf.first()?;
    if first >> 4 != 1 {
        return Some(Err(format!(
            "the first packet is of type {}, not CONNECT",
            first >> 4
        )));
    }
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Some(Err("malformed remaining length".into()));
        }
    }
    let name_len = u16::from_be_bytes([*buf.get(i)?, *buf.get(i + 1)?]) as usize;
    let level = *buf.get(i + 2 + name_len)?;
    Some(Ok(level))
}

/// Reads the first packet, which must be a CONNECT of MQTT 3.1.1.
async fn read_connect<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<Option<rumqttc::mqttbytes::v4::Connect>, ConnectError> {
    loop {
        match connect_level(buf) {
            Some(Ok(4)) => break,
            Some(Ok(level)) => return Err(ConnectError::Level(level)),
            Some(Err(e)) => return Err(ConnectError::Other(e)),
            None if buf.len() > 64 => return Err(ConnectError::Other("unreadable CONNECT".into())),
            None => match reader.read_buf(buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(ConnectError::Other(e.to_string())),
            },
        }
    }
    match read_packet(reader, buf).await {
        Ok(Some(Packet::Connect(c))) if c.protocol == Protocol::V4 => Ok(Some(c)),
        Ok(Some(_)) => Err(ConnectError::Other(
            "the first packet is not an MQTT 3.1.1 CONNECT".into(),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(ConnectError::Other(e)),
    }
}

/// Reads one packet; `None` at a clean end of stream.
async fn read_packet<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<Option<Packet>, String> {
    loop {
        match Packet::read(buf, MAX_INCOMING_PACKET) {
            Ok(p) => return Ok(Some(p)),
            Err(CodecError::InsufficientBytes(_)) => {}
            Err(e) => return Err(format!("malformed packet: {e}")),
        }
        match reader.read_buf(buf).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err("the connection closed inside a packet".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(
    writer: &mut W,
    encode: impl FnOnce(&mut BytesMut) -> Result<usize, CodecError>,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    encode(&mut out).map_err(|e| std::io::Error::other(e.to_string()))?;
    writer.write_all(&out).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::is_c2d_filter;

    #[test]
    fn only_the_c2d_filters_are_served() {
        assert!(is_c2d_filter("devices/d1/messages/devicebound/#", "d1"));
        assert!(is_c2d_filter("devices/+/messages/devicebound/#", "d1"));
        assert!(!is_c2d_filter("devices/d2/messages/devicebound/#", "d1"));
        assert!(!is_c2d_filter("$iothub/twin/res/#", "d1"));
        assert!(!is_c2d_filter("devices/d1/messages/devicebound", "d1"));
    }
}
