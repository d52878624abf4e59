//! HTTPS on 443: the registry REST API and queue purge, exactly as IoT Hub answers them
//! (PROTOCOL.md §5). WebSockets, feedback over REST and device HTTPS receive arrive later on
//! the same listener.

mod error;
mod registry;
mod websocket;

use std::sync::Arc;

use axum::routing::{get, put};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::server::TlsStream;

use crate::local_hub::Shared;

pub(crate) use error::HttpError;

/// The REST routes and the WebSocket endpoints.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/devices", get(registry::list_devices))
        .route(
            "/devices/{id}",
            put(registry::put_device)
                .get(registry::get_device)
                .delete(registry::delete_device),
        )
        .route(
            "/devices/{id}/commands",
            axum::routing::delete(registry::purge_queue),
        )
        .route("/$iothub/websocket", get(websocket::upgrade))
        .route("/$servicebus/websocket", get(websocket::upgrade))
        .route("/$servicebus/websocket/", get(websocket::upgrade))
        .fallback(error::not_found)
        .with_state(shared)
}

/// The address of the client of an HTTPS connection.
#[derive(Debug, Clone)]
pub(crate) struct PeerAddr(pub String);

/// Serves one TLS connection with HTTP/1.1 (and WebSocket upgrades).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: TlsStream<tokio::net::TcpStream>,
    peer: String,
) {
    let service = TowerToHyperService::new(router(shared).layer(axum::Extension(PeerAddr(peer))));
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "HTTPS connection ended with an error");
    }
}
