//! Device C2D over HTTPS: receive with an ETag lock token, complete,
//! reject and abandon.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use uuid::Uuid;

use super::{authorize_device, HttpError, HTTP_OWNER};
use crate::auth::x509::PeerCertificates;
use crate::auth::Access;
use crate::context::HubContext;
use crate::state::{Delivery, LockLost, Settlement};

fn lock_lost() -> HttpError {
    HttpError::new(
        StatusCode::PRECONDITION_FAILED,
        "DeviceMessageLockLost",
        412002,
        "the message lock was lost or has expired",
    )
}

fn parse_lock(token: &str) -> Result<Uuid, HttpError> {
    super::lock_token(token).ok_or_else(lock_lost)
}

/// Authorizes a request to a device's endpoints: its token, or its certificate.
fn authorize(
    ctx: &HubContext,
    headers: &HeaderMap,
    certificates: &PeerCertificates,
    device: &str,
) -> Result<(), HttpError> {
    authorize_device(
        ctx,
        headers,
        certificates,
        Access::Device(device),
        "device request",
    )
}

/// `GET /devices/{id}/messages/deviceBound`: 204 when empty, else the oldest message, locked.
pub(super) async fn receive(
    State(ctx): State<Arc<HubContext>>,
    Path(device): Path<String>,
    Extension(certificates): Extension<PeerCertificates>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    authorize(&ctx, &headers, &certificates, &device)?;
    super::throttled(&ctx, crate::throttle::Operation::HttpsReceive).await?;
    ctx.polled(&device);
    let lock = headers
        .get("iothub-messagelocktimeout")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.clamp(5, 300)));
    let d = device.clone();
    let delivery = ctx.store.apply(move |s, now| {
        let lock = lock.unwrap_or(s.limits.lock_timeout);
        s.receive_with_lock(now, &d, HTTP_OWNER, lock)
    });
    if let (Some(_), Some(delay)) = (&delivery, ctx.faults.delay(&device)) {
        // a fault: every delivery to this device is late (its lock runs)
        tokio::time::sleep(delay).await;
    }
    Ok(match delivery {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(d) => message_response(d),
    })
}

fn message_response(d: Delivery) -> Response {
    let m = &d.message;
    let mut headers = HeaderMap::new();
    let mut set = |name: &str, value: String| match (
        HeaderName::try_from(name),
        HeaderValue::from_str(&value),
    ) {
        (Ok(n), Ok(v)) => {
            headers.insert(n, v);
        }
        _ => tracing::warn!(
            header = name,
            "HTTPS: a property that cannot be an HTTP header was left out"
        ),
    };
    set("etag", format!("\"{}\"", d.lock_token));
    set("iothub-sequencenumber", d.seq.to_string());
    set("iothub-deliverycount", d.delivery_count.to_string());
    set(
        "iothub-enqueuedtime",
        c2d::timestamp::format_utc(d.enqueued),
    );
    if let Some(id) = &m.message_id {
        set("iothub-messageid", id.to_string());
    }
    if let Some(to) = &m.to {
        set("iothub-to", to.clone());
    }
    if let Some(exp) = m.expiry_time {
        set("iothub-expiry", c2d::timestamp::format_utc(exp));
    }
    if let Some(id) = &m.correlation_id {
        set("iothub-correlationid", id.to_string());
    }
    if let Some(uid) = &m.user_id {
        set("iothub-userid", String::from_utf8_lossy(uid).into_owned());
    }
    if let Some(ack) = m.ack {
        set("iothub-ack", ack.as_str().to_string());
    }
    if let Some(ct) = &m.content_type {
        set("iothub-contenttype", ct.clone());
        set("contenttype", ct.clone());
    }
    if let Some(ce) = &m.content_encoding {
        set("iothub-contentencoding", ce.clone());
        set("contentencoding", ce.clone());
    }
    for (k, v) in &m.properties {
        set(&format!("iothub-app-{k}"), v.clone());
    }
    let mut resp = (StatusCode::OK, Body::from(m.body.clone())).into_response();
    resp.headers_mut().extend(headers);
    resp
}

async fn settle(
    ctx: &HubContext,
    device: String,
    token: Uuid,
    how: Settlement,
) -> Result<StatusCode, HttpError> {
    let result: Result<(), LockLost> = ctx
        .store
        .apply_durably(move |s, now| s.settle(now, &device, token, how))
        .await?;
    result
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(|_| lock_lost())
}

/// Whether the query asks to reject: `reject`, `reject=…`, or Java's `%3Freject=true`.
fn wants_reject(query: Option<&str>) -> bool {
    query.unwrap_or("").split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        let key = c2d::sas::url_decode(key).unwrap_or_default();
        key.trim_start_matches('?') == "reject"
    })
}

/// `DELETE /devices/{id}/messages/deviceBound/{lockToken}[?reject]`: complete or reject.
pub(super) async fn complete_or_reject(
    State(ctx): State<Arc<HubContext>>,
    Path((device, lock)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    Extension(certificates): Extension<PeerCertificates>,
    headers: HeaderMap,
) -> Result<StatusCode, HttpError> {
    authorize(&ctx, &headers, &certificates, &device)?;
    let how = if wants_reject(query.as_deref()) {
        Settlement::Reject
    } else {
        Settlement::Complete
    };
    settle(&ctx, device, parse_lock(&lock)?, how).await
}

/// `POST /devices/{id}/messages/deviceBound/{lockToken}/abandon`.
pub(super) async fn abandon(
    State(ctx): State<Arc<HubContext>>,
    Path((device, lock)): Path<(String, String)>,
    Extension(certificates): Extension<PeerCertificates>,
    headers: HeaderMap,
) -> Result<StatusCode, HttpError> {
    authorize(&ctx, &headers, &certificates, &device)?;
    settle(&ctx, device, parse_lock(&lock)?, Settlement::Abandon).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_reject_rejects() {
        assert!(wants_reject(Some("api-version=2016-11-14&reject")));
        assert!(wants_reject(Some("api-version=2020-09-30&%3Freject=true")));
        assert!(wants_reject(Some("reject=true&api-version=1")));
        assert!(!wants_reject(Some("api-version=2021-04-12")));
        assert!(!wants_reject(None));
        assert!(!wants_reject(Some("rejected=1")));
    }

    #[test]
    fn lock_tokens_parse_quoted_or_not() {
        let u = Uuid::new_v4();
        assert_eq!(parse_lock(&u.to_string()).unwrap(), u);
        assert_eq!(parse_lock(&format!("\"{u}\"")).unwrap(), u);
        assert_eq!(parse_lock(&format!("%22{u}%22")).unwrap(), u);
        assert!(parse_lock("nope").is_err());
    }
}
