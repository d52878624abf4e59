//! HTTPS on 443, as IoT Hub answers it: the registry, queue purge,
//! feedback over REST, device C2D over HTTPS, and WebSockets for MQTT and AMQP.

mod admin;
mod device;
mod error;
mod feedback;
mod registry;
pub(crate) mod ui;
mod websocket;

use std::sync::Arc;

use axum::routing::{delete, get, post, put};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

use crate::context::HubContext;

pub(crate) use error::HttpError;

/// Authorizes a request from its `Authorization` header; a refusal is logged with `what`.
fn authorize(
    ctx: &HubContext,
    headers: &axum::http::HeaderMap,
    access: crate::auth::Access<'_>,
    what: &str,
) -> Result<(), HttpError> {
    authorize_device(ctx, headers, &None, access, what)
}

/// Like [`authorize`], and a device request without an `Authorization` header is
/// authenticated by the connection's client certificate.
fn authorize_device(
    ctx: &HubContext,
    headers: &axum::http::HeaderMap,
    certificates: &crate::auth::x509::PeerCertificates,
    access: crate::auth::Access<'_>,
    what: &str,
) -> Result<(), HttpError> {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok());
    let result = match (token, access, certificates) {
        (None, crate::auth::Access::Device(id), Some(_)) => ctx.authorize_x509(id, certificates),
        _ => ctx.authorize(token.unwrap_or(""), access),
    };
    result.map(|_| ()).map_err(|e| {
        tracing::warn!(error = %e, "HTTPS {what} refused");
        HttpError::from(e)
    })
}

/// Waits for `op`'s turn under the hub's throttling, or answers 429 (`ThrottlingException`,
/// 429001) when its backlog is full.
async fn throttled(ctx: &HubContext, op: crate::throttle::Operation) -> Result<(), HttpError> {
    match ctx.admit(op) {
        crate::throttle::Admission::Now => Ok(()),
        crate::throttle::Admission::After(wait) => {
            tokio::time::sleep(wait).await;
            Ok(())
        }
        crate::throttle::Admission::Refused => Err(HttpError::throttled()),
    }
}

/// A lock token as sent in a path or `If-Match`: a GUID, quoted (even percent-encoded
/// quotes) or not.
fn lock_token(text: &str) -> Option<uuid::Uuid> {
    let t = text.trim().trim_matches('"');
    let t = c2d::sas::url_decode(t).unwrap_or_else(|_| t.to_string());
    uuid::Uuid::parse_str(t.trim_matches('"')).ok()
}

/// The owner of locks taken over HTTPS (device receives, feedback reads): no connection
/// holds them, so only their lock timeout ends them.
const HTTP_OWNER: u64 = 0;

/// The REST routes and the WebSocket endpoints.
pub(crate) fn router(ctx: Arc<HubContext>) -> Router {
    Router::new()
        .route("/devices", get(registry::list_devices))
        .route("/devices/", get(registry::list_devices))
        .route(
            "/devices/{id}",
            put(registry::put_device)
                .get(registry::get_device)
                .delete(registry::delete_device),
        )
        .route("/devices/query", post(registry::query_devices))
        .route("/devices/{id}/commands", delete(registry::purge_queue))
        .route("/devices/{id}/messages/deviceBound", get(device::receive))
        .route("/devices/{id}/messages/devicebound", get(device::receive))
        .route(
            "/devices/{id}/messages/deviceBound/{lock}",
            delete(device::complete_or_reject),
        )
        .route(
            "/devices/{id}/messages/devicebound/{lock}",
            delete(device::complete_or_reject),
        )
        .route(
            "/devices/{id}/messages/deviceBound/{lock}/abandon",
            post(device::abandon),
        )
        .route(
            "/devices/{id}/messages/devicebound/{lock}/abandon",
            post(device::abandon),
        )
        .route("/messages/serviceBound/feedback", get(feedback::receive))
        .route("/messages/servicebound/feedback", get(feedback::receive))
        .route(
            "/messages/serviceBound/feedback/{lock}",
            delete(feedback::complete),
        )
        .route(
            "/messages/servicebound/feedback/{lock}",
            delete(feedback::complete),
        )
        .route(
            "/messages/serviceBound/feedback/{lock}/abandon",
            post(feedback::abandon),
        )
        .route(
            "/messages/servicebound/feedback/{lock}/abandon",
            post(feedback::abandon),
        )
        .route("/$iothub/websocket", get(websocket::upgrade))
        .route("/$servicebus/websocket", get(websocket::upgrade))
        .route("/$servicebus/websocket/", get(websocket::upgrade))
        .merge(ui::routes(ctx.clone()))
        .merge(admin::routes())
        .fallback(error::not_found)
        .with_state(ctx)
}

/// The address of the client of an HTTPS connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub std::net::SocketAddr);

/// Logs every request with its answer (at debug level).
async fn log_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "HTTPS request");
    resp
}

/// Serves one connection (after TLS) with HTTP/1.1 (and WebSocket upgrades).
pub(crate) async fn serve<S>(
    ctx: Arc<HubContext>,
    stream: S,
    peer: crate::sessions::Peer,
    certificates: crate::auth::x509::PeerCertificates,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let router = router(ctx)
        .layer(axum::Extension(PeerAddr(peer.address)))
        .layer(axum::Extension(certificates))
        .layer(axum::middleware::from_fn(log_request));
    let service = TowerToHyperService::new(router);
    // a client that shuts down its sending side after its request still gets the answer
    let conn = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "HTTPS connection ended with an error");
    }
}
