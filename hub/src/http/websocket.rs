//! WebSockets on the HTTPS port: `/$iothub/websocket` carries MQTT
//! (subprotocol `mqtt`) or AMQP (`AMQPWSB10` or `amqp`), and uAMQP's `/$servicebus/websocket/`
//! carries AMQP. The chosen subprotocol is echoed; any query string is ignored.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::PeerAddr;
use crate::context::HubContext;
use crate::sessions::Peer;

/// The subprotocols the hub speaks, in order of preference.
const PROTOCOLS: [&str; 4] = ["mqtt", "MQTT", "AMQPWSB10", "amqp"];
/// Largest WebSocket message accepted (MQTT packets and AMQP frames are smaller).
const MAX_MESSAGE: usize = 1024 * 1024;

/// `GET /$iothub/websocket` and `/$servicebus/websocket/`.
pub(super) async fn upgrade(
    State(ctx): State<Arc<HubContext>>,
    Extension(PeerAddr(peer)): Extension<PeerAddr>,
    Extension(certificates): Extension<crate::auth::x509::PeerCertificates>,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols(PROTOCOLS).max_message_size(MAX_MESSAGE);
    let Some(protocol) = ws
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .map(str::to_string)
    else {
        tracing::warn!(%peer, "WebSocket without an MQTT or AMQP subprotocol refused");
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must offer mqtt, AMQPWSB10 or amqp",
        )
            .into_response();
    };
    ws.on_upgrade(move |socket| async move {
        let io = WsIo {
            ws: socket,
            pending: Bytes::new(),
        };
        let peer = Peer {
            address: peer,
            websocket: true,
        };
        let serve = {
            let ctx = ctx.clone();
            async move {
                if protocol.eq_ignore_ascii_case("mqtt") {
                    crate::mqtt::serve(ctx, io, peer, certificates).await
                } else {
                    crate::amqp::serve(ctx, io, peer, certificates).await
                }
            }
        };
        crate::context::run_connection(&ctx, serve).await;
    })
}

/// A WebSocket as a byte stream: binary messages in, binary messages out.
pub(crate) struct WsIo {
    ws: WebSocket,
    pending: Bytes,
}

impl std::fmt::Debug for WsIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsIo").finish_non_exhaustive()
    }
}

fn other(e: axum::Error) -> io::Error {
    io::Error::other(e)
}

impl AsyncRead for WsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.remaining().min(self.pending.len());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => self.pending = b,
                Some(Ok(Message::Text(t))) => self.pending = Bytes::copy_from_slice(t.as_bytes()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(other(e))),
            }
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(other)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(data)))
            .map_err(other)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(other)
    }
}
