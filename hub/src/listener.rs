//! The listeners' accept loops: accept a TCP connection, make TLS (the AMQP port first looks
//! at the first byte: TLS, or the AMQP TLS header), and hand the stream to its port's
//! protocol, counted as a connection of the hub.
//!
//! Imports the protocols and the context; only `local_hub` imports it.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::context::{run_connection, HubContext};
use crate::sessions::Peer;

/// Which protocol a listener serves.
#[derive(Clone, Copy)]
pub(crate) enum Listener {
    /// MQTT 3.1.1 over TLS (8883).
    Mqtt,
    /// AMQP 1.0 over TLS (5671).
    Amqp,
    /// HTTPS: REST and WebSockets (443).
    Https,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Mqtt => "mqtt",
            Listener::Amqp => "amqp",
            Listener::Https => "https",
        }
    }
}

/// Accepts connections on `listener` until the task is aborted.
pub(crate) async fn accept_loop(
    ctx: Arc<HubContext>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    protocol: Listener,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let ctx = ctx.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let serve = serve_connection(ctx.clone(), tcp, peer, acceptor, protocol);
            run_connection(&ctx, serve).await;
        });
    }
}

async fn serve_connection(
    ctx: Arc<HubContext>,
    tcp: tokio::net::TcpStream,
    address: std::net::SocketAddr,
    acceptor: TlsAcceptor,
    protocol: Listener,
) {
    // each protocol's session is boxed: a connection's task then holds its own protocol's
    // state, not room for the largest of the three (10.5 KiB where MQTT needs 3.1)
    if let Listener::Amqp = protocol {
        return Box::pin(crate::amqp::serve_tcp(ctx, tcp, address, acceptor)).await;
    }
    // the TLS stream lives in a block that ends before the session is awaited: a binding
    // still in scope at that await keeps its 1.2 KiB slot in this future for the
    // connection's life, moved from or not
    let session: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = {
        let accept = Box::pin(acceptor.accept(tcp));
        let tls = match tokio::time::timeout(Duration::from_secs(10), accept).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                ctx.handshake_failed(address, protocol.name(), &e);
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %address, "TLS handshake timed out");
                return;
            }
        };
        let certificates = crate::auth::x509::peer_certificates(tls.get_ref().1);
        let peer = Peer::tls(address);
        match protocol {
            Listener::Mqtt => Box::pin(crate::mqtt::serve(ctx, tls, peer, certificates)),
            Listener::Https => Box::pin(crate::http::serve(ctx, tls, peer, certificates)),
            Listener::Amqp => unreachable!("AMQP connections are served by serve_tcp"),
        }
    };
    session.await
}
