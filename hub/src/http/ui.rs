//! The hub's live page under `/ui/` and its metrics at `/metrics`, on the HTTPS port beside
//! IoT Hub's own REST paths (docs/hub.md, "The hub's live page and its metrics").
//!
//! Access works like a notebook server's: the hub makes a token at every start (written to
//! `ui-token` in its data directory, readable by its owner only), `c2d hub` prints the page's
//! address with it, and opening that address sets a session cookie and drops the token from
//! the address. Without the token or the cookie, the page, its event stream and its actions
//! answer 401. `/metrics` takes the token as a bearer token, or a SAS token of a policy that
//! grants RegistryRead.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use c2d::timestamp::to_unix_millis;

use crate::context::HubContext;
use crate::state::{MessageState, SendError};

/// At most this many devices are listed (connected ones and the deepest queues first).
const MAX_DEVICES: usize = 200;
/// At most this many of the chosen device's messages are listed.
const MAX_MESSAGES: usize = 500;
/// How often an event stream looks for changes.
const POLL: Duration = Duration::from_millis(200);
/// An event stream sends the state at least this often (the rates move even when nothing
/// else does).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The largest body a test message from the page may have.
const MAX_TEST_BODY: usize = 4096;

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session cookie's value: derived from the token, so it is worth nothing once the hub
/// has a new token.
fn session_value(token: &str) -> String {
    crate::auth::x509::hex(&Sha256::digest(
        format!("c2d-ui-session:{token}").as_bytes(),
    ))
}

/// The session cookie's name: cookies are per host, not per port, and two hubs on one host
/// must not take each other's.
fn cookie_name(ctx: &HubContext) -> String {
    format!("c2d_ui_{}", ctx.https_port)
}

fn has_session(ctx: &HubContext, headers: &HeaderMap) -> bool {
    let name = cookie_name(ctx);
    let expected = session_value(&ctx.ui_token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == name && same(v.as_bytes(), expected.as_bytes()))
}

fn unauthorized(html: bool) -> Response {
    let mut resp = if html {
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            include_str!("../ui/unauthorized.html"),
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "open the address with the token that `c2d hub` (or `c2d hub info`) prints",
        )
            .into_response()
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Lets a request under `/ui/` through with the session cookie; trades a right token in the
/// address for the cookie; answers 401 otherwise. Every answer gets headers that keep the
/// page to itself.
async fn require_session(State(ctx): State<Arc<HubContext>>, req: Request, next: Next) -> Response {
    let token = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .ok()
        .and_then(|Query(mut q)| q.remove("token"));
    let mut resp = match token {
        Some(t) if same(t.as_bytes(), ctx.ui_token.as_bytes()) => {
            let cookie = format!(
                "{}={}; Path=/ui; HttpOnly; Secure; SameSite=Strict",
                cookie_name(&ctx),
                session_value(&ctx.ui_token)
            );
            let mut resp = Redirect::to(req.uri().path()).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Some(_) => {
            ctx.refuse("ui_token");
            unauthorized(true)
        }
        None if has_session(&ctx, req.headers()) => next.run(req).await,
        None => unauthorized(req.uri().path() == "/ui/"),
    };
    let headers = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// The page's routes, behind [`require_session`], and `/metrics`.
pub(super) fn routes(ctx: Arc<HubContext>) -> Router<Arc<HubContext>> {
    let page = Router::new()
        .route("/ui/", get(page))
        .route("/ui/app.js", get(script))
        .route("/ui/style.css", get(style))
        .route("/ui/events", get(events))
        .route("/ui/api/devices/{id}/messages/{seq}/body", get(body))
        .route("/ui/api/devices/{id}/messages", post(send_test))
        .route("/ui/api/devices/{id}/purge", post(purge))
        .layer(axum::middleware::from_fn_with_state(ctx, require_session));
    Router::new()
        .route("/ui", get(to_page))
        .route("/metrics", get(metrics))
        .merge(page)
}

/// `/ui` is `/ui/`, with the query (the token) kept.
async fn to_page(axum::extract::RawQuery(query): axum::extract::RawQuery) -> Redirect {
    match query {
        Some(q) => Redirect::permanent(&format!("/ui/?{q}")),
        None => Redirect::permanent("/ui/"),
    }
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", include_str!("../ui/index.html"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../ui/app.js"),
    )
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("../ui/style.css"))
}

/// A device as the page lists it.
#[derive(serde::Serialize)]
struct Listed {
    id: String,
    auth: String,
    enabled: bool,
    depth: usize,
    connected: Option<Value>,
    /// When it last polled over HTTPS (ms since the epoch), if it ever did.
    polled: Option<i64>,
}

/// Everything the page shows, with the queue of `device` if one is chosen. The hub's state
/// is locked only to copy out what is shown (the listed devices, the chosen queue, the
/// recent outcomes); the JSON is made after.
pub(crate) fn snapshot(ctx: &HubContext, device: Option<&str>) -> Value {
    let presence = ctx.sessions.presence();
    let (total, mut devices, chosen, counters, feedback, dead_letters, limits) =
        ctx.store.read(|s| {
            // connected devices first, then the deepest queues, then by id; only the first
            // MAX_DEVICES are copied
            let mut order: Vec<(bool, std::cmp::Reverse<usize>, &str)> = s
                .registry
                .devices()
                .map(|d| {
                    let id = d.device_id.as_str();
                    let depth = s.queue_depth(id);
                    (!presence.contains_key(id), std::cmp::Reverse(depth), id)
                })
                .collect();
            let total = order.len();
            if order.len() > MAX_DEVICES {
                order.select_nth_unstable(MAX_DEVICES);
                order.truncate(MAX_DEVICES);
            }
            let devices: Vec<Listed> = order
                .iter()
                .filter_map(|(_, std::cmp::Reverse(depth), id)| {
                    let d = s.registry.device(id)?;
                    Some(Listed {
                        id: d.device_id.clone(),
                        auth: d.authentication.kind.clone(),
                        enabled: d.status == "enabled",
                        depth: *depth,
                        connected: None,
                        polled: None,
                    })
                })
                .collect();
            let chosen = device.and_then(|id| {
                s.registry.device(id)?;
                let queue = s.queues.get(id);
                let messages: Vec<Value> = queue
                    .into_iter()
                    .flat_map(|q| q.values())
                    .take(MAX_MESSAGES)
                    .map(message_row)
                    .collect();
                Some((id.to_string(), queue.map_or(0, |q| q.len()), messages))
            });
            (
                total,
                devices,
                chosen,
                s.stats.counters,
                s.stats.recent_feedback.clone(),
                s.stats.dead_letters.clone(),
                s.limits.clone(),
            )
        });
    fn order<'a>(
        presence: &HashMap<String, crate::sessions::Presence>,
        d: &'a Listed,
    ) -> (bool, std::cmp::Reverse<usize>, &'a str) {
        (
            !presence.contains_key(&d.id),
            std::cmp::Reverse(d.depth),
            d.id.as_str(),
        )
    }
    devices.sort_by(|a, b| order(&presence, a).cmp(&order(&presence, b)));
    let polls = ctx.sessions.last_polls();
    for d in &mut devices {
        d.connected = presence.get(&d.id).map(
            |p| json!({ "transport": p.transport.as_str(), "since": to_unix_millis(p.since) }),
        );
        d.polled = polls.get(&d.id).copied().map(to_unix_millis);
    }
    let feedback: Vec<Value> = feedback
        .iter()
        .rev()
        .map(|r| {
            json!({
                "at": to_unix_millis(r.enqueued_time),
                "device": r.device_id,
                "message_id": r.original_message_id,
                "status": r.status.as_str(),
            })
        })
        .collect();
    let dead_letters: Vec<Value> = dead_letters
        .iter()
        .rev()
        .map(|d| {
            json!({
                "at": to_unix_millis(d.at),
                "device": d.device_id,
                "message_id": d.message_id,
                "reason": d.reason.as_str(),
                "delivery_count": d.delivery_count,
                "ack": d.ack.as_str(),
            })
        })
        .collect();
    json!({
        "hub": ctx.host_name,
        "at": to_unix_millis(ctx.store.now()),
        "limits": {
            "max_queue_depth": limits.max_queue_depth,
            "max_delivery_count": limits.max_delivery_count,
            "lock_timeout_ms": limits.lock_timeout.as_millis() as u64,
        },
        "counters": counters,
        // IoT Hub's throttling, when the hub keeps it, and the requests it refused
        "throttling": ctx.throttle.get().map(|t| json!({
            "tier": t.tier.as_str(),
            "units": t.units,
            "c2d_sends_per_minute": t.tier.c2d_sends_per_minute() * t.units,
        })),
        "throttled": ctx.refused.with_label_values(&["throttled"]).get(),
        // the faults in force (`c2d hub fault`), shown while they last
        "faults": crate::faults::active(ctx),
        "devices": devices,
        "devices_total": total,
        "device": chosen.map(|(id, depth, messages)| json!({
            "id": id,
            "depth": depth,
            "messages": messages,
        })),
        "feedback": feedback,
        "dead_letters": dead_letters,
    })
}

/// What the page shows of a queued message (its body only on request).
fn message_row(m: &crate::state::QueuedMessage) -> Value {
    let msg = &m.message;
    json!({
        "seq": m.seq,
        "message_id": msg.message_id.as_ref().map(ToString::to_string),
        "correlation_id": msg.correlation_id.as_ref().map(ToString::to_string),
        "state": match m.state {
            MessageState::Enqueued => "Enqueued",
            MessageState::Invisible => "Invisible",
        },
        "delivery_count": m.delivery_count,
        "enqueued": to_unix_millis(m.enqueued),
        "expires": to_unix_millis(m.expires),
        "lock_expires": m.lock.as_ref().map(|l| to_unix_millis(l.expires)),
        "size": msg.wire_size(),
        "body_size": msg.body.len(),
        "ack": msg.ack_mode().as_str(),
        "content_type": msg.content_type,
        "properties": msg.properties,
    })
}

#[derive(Deserialize)]
struct EventsQuery {
    device: Option<String>,
}

/// `GET /ui/events[?device=ID]`: server-sent events, each a `state` event with the whole of
/// [`snapshot`], sent within [`POLL`] of a change and at least every [`HEARTBEAT`].
async fn events(
    State(ctx): State<Arc<HubContext>>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Watch {
        ctx: Arc<HubContext>,
        device: Option<String>,
        seen: Option<(u64, u64)>,
        sent: Instant,
    }
    let start = Watch {
        ctx,
        device: q.device.filter(|d| !d.is_empty()),
        seen: None,
        sent: Instant::now(),
    };
    let stream = futures_util::stream::unfold(start, |mut w| async move {
        loop {
            let now = (
                w.ctx.store.read(|s| s.stats.version),
                w.ctx.sessions.version(),
            );
            if w.seen != Some(now) || w.sent.elapsed() >= HEARTBEAT {
                w.seen = Some(now);
                w.sent = Instant::now();
                let data = snapshot(&w.ctx, w.device.as_deref()).to_string();
                return Some((Ok(Event::default().event("state").data(data)), w));
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /ui/api/devices/{id}/messages/{seq}/body`: a queued message's body, as text (never
/// as something a browser would render).
async fn body(
    State(ctx): State<Arc<HubContext>>,
    Path((id, seq)): Path<(String, u64)>,
) -> Response {
    let body = ctx
        .store
        .read(|s| s.message(&id, seq).map(|m| m.message.body.clone()));
    match body {
        Some(b) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            String::from_utf8_lossy(&b).into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such message in the queue").into_response(),
    }
}

/// Actions change the hub: they must come from the page's own script, which sends this
/// header (a form on another site cannot); `None` lets the request through.
fn not_from_page(headers: &HeaderMap) -> Option<Response> {
    (!headers.contains_key("x-c2d-ui"))
        .then(|| (StatusCode::FORBIDDEN, "actions come from the hub's page").into_response())
}

#[derive(Deserialize)]
struct TestMessage {
    body: String,
    #[serde(default)]
    properties: HashMap<String, String>,
}

/// `POST /ui/api/devices/{id}/messages`: sends a test message with `ack=full` and a new
/// message id, which the page then follows to its feedback.
async fn send_test(
    State(ctx): State<Arc<HubContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(t): Json<TestMessage>,
) -> Response {
    if let Some(refused) = not_from_page(&headers) {
        return refused;
    }
    if t.body.len() > MAX_TEST_BODY {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a test message from the page has at most {MAX_TEST_BODY} bytes"),
        )
            .into_response();
    }
    let message_id = uuid::Uuid::new_v4().to_string();
    let mut message = c2d::Message::new(t.body)
        .message_id(message_id.clone())
        .ack(c2d::Ack::Full);
    let mut properties: Vec<_> = t.properties.into_iter().collect();
    properties.sort();
    for (k, v) in properties {
        message = message.property(k, v);
    }
    message.to = Some(format!("/devices/{id}/messages/devicebound"));
    let device = id.clone();
    let sent = ctx.store.send(&device, message).await;
    match sent {
        Ok(Ok(seq)) => {
            tracing::info!(device = %id, %message_id, "test message sent from the hub's page");
            Json(json!({ "message_id": message_id, "seq": seq })).into_response()
        }
        Ok(Err(e)) => {
            let status = match e {
                SendError::DeviceNotFound(_) => StatusCode::NOT_FOUND,
                SendError::QueueFull { .. } => StatusCode::FORBIDDEN,
                SendError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            };
            (status, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `POST /ui/api/devices/{id}/purge`: purges the device's queue (`Purged` feedback).
async fn purge(
    State(ctx): State<Arc<HubContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = not_from_page(&headers) {
        return refused;
    }
    let device = id.clone();
    match ctx.store.exec(move |s, now| s.purge(now, &device)).await {
        Ok(Ok(n)) => {
            tracing::info!(device = %id, purged = n, "queue purged from the hub's page");
            Json(json!({ "purged": n })).into_response()
        }
        Ok(Err(e)) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// Whether the request carries the page's token as a bearer token (a wrong one is counted,
/// `reason="ui_token"`); `None` when it carries no bearer token at all.
pub(super) fn bearer_is_page_token(ctx: &HubContext, headers: &HeaderMap) -> Option<bool> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let t = auth.strip_prefix("Bearer ")?;
    let ok = same(t.trim().as_bytes(), ctx.ui_token.as_bytes());
    if !ok {
        ctx.refuse("ui_token");
    }
    Some(ok)
}

/// 401 for a request that needs the page's token as a bearer token.
pub(super) fn bearer_unauthorized() -> Response {
    let mut resp = unauthorized(false);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"c2d hub\""),
    );
    resp
}

/// `GET /metrics`, for a bearer token that is the hub's page token or a SAS token with
/// RegistryRead.
async fn metrics(State(ctx): State<Arc<HubContext>>, headers: HeaderMap) -> Response {
    let allowed = match bearer_is_page_token(&ctx, &headers) {
        Some(ok) => ok,
        None if !headers.contains_key(header::AUTHORIZATION) => false,
        None => {
            super::authorize(&ctx, &headers, crate::auth::Access::RegistryRead, "metrics").is_ok()
        }
    };
    if !allowed {
        return bearer_unauthorized();
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&ctx),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert_ne!(session_value("a"), session_value("b"));
    }
}
