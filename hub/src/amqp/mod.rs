//! The AMQP 1.0 endpoint: TLS terminated by the hub
//! (or requested in-band with the `AMQP 2 1 0 0` header), then the AMQP header with no SASL, or
//! SASL MSSBCBS, ANONYMOUS or PLAIN; CBS `put-token`; the service's C2D sender link and the
//! feedback receiver link.
//!
//! The engine is the hub's own, on fe2o3-amqp's frame and message types, so that every byte
//! IoT Hub's clients depend on (delivery tags, attach echoes, error conditions, settle mode
//! *second* answers) is under the hub's control.

mod attach;
mod cbs;
mod connection;
pub(crate) mod convert;
mod deliveries;
pub(crate) mod frames;
mod sasl;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::context::HubContext;
use frames::{AMQP_HEADER, SASL_HEADER, TLS_HEADER};

/// What other tasks tell an AMQP connection.
#[derive(Debug)]
pub(crate) enum Control {
    /// A device's queue may have messages for its receiving link.
    Wake(String),
    /// The receiving link of this owner must end (replaced, or its device deleted).
    Signal(u64, crate::sessions::SessionSignal),
}

/// Serves a TCP connection on the AMQP port: a TLS ClientHello goes straight to TLS; an
/// `AMQP 2 1 0 0` header is answered and then TLS follows; plain AMQP is refused.
pub(crate) async fn serve_tcp(
    ctx: Arc<HubContext>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(10), tcp.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if first[0] != 0x16 {
        let mut header = [0u8; 8];
        if tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut header))
            .await
            .is_err()
        {
            return;
        }
        let _ = tcp.write_all(&TLS_HEADER).await;
        if header != TLS_HEADER {
            tracing::warn!(%peer, "AMQP: refusing a connection without TLS");
            ctx.refuse("protocol");
            return;
        }
    }
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            ctx.handshake_failed(peer, "amqp", &e);
            return;
        }
        Err(_) => return,
    };
    let certificates = crate::auth::x509::peer_certificates(tls.get_ref().1);
    serve(ctx, tls, crate::sessions::Peer::tls(peer), certificates).await
}

/// Serves AMQP over an established secure stream (TLS, or a WebSocket inside TLS).
pub(crate) async fn serve<S>(
    ctx: Arc<HubContext>,
    mut stream: S,
    peer: crate::sessions::Peer,
    certificates: crate::auth::x509::PeerCertificates,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut header = [0u8; 8];
    if tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header))
        .await
        .is_err()
    {
        return;
    }
    let mut sasl_grant = None;
    if header == SASL_HEADER {
        // flushed at once: a WebSocket sends nothing until flushed
        if stream.write_all(&SASL_HEADER).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        match sasl::negotiate(&ctx, &mut stream).await {
            Ok(sasl::SaslResult::Ok(grant)) => sasl_grant = grant,
            Ok(sasl::SaslResult::Refused(why)) => {
                tracing::warn!(%peer, reason = %why, "AMQP: SASL authentication refused");
                return;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "AMQP: SASL exchange failed");
                return;
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header))
            .await
            .is_err()
        {
            return;
        }
    }
    if header != AMQP_HEADER {
        tracing::warn!(%peer, header = ?header, "AMQP: unsupported protocol header");
        let _ = stream.write_all(&AMQP_HEADER).await;
        let _ = stream.flush().await;
        return;
    }
    if stream.write_all(&AMQP_HEADER).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    connection::run(ctx, stream, peer, sasl_grant, certificates).await
}
