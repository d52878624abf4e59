//! `PUT/GET/DELETE /devices/{id}`, `GET /devices` and `DELETE /devices/{id}/commands`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use c2d::{Device, PurgeResult};

use super::{authorize, HttpError};
use crate::auth::Access;
use crate::context::HubContext;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn device_response(status: StatusCode, d: Device) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", d.etag)).ok();
    let mut resp = (status, Json(d)).into_response();
    if let Some(etag) = etag {
        resp.headers_mut().insert("etag", etag);
    }
    resp
}

pub(super) async fn put_device(
    State(ctx): State<Arc<HubContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    authorize(
        &ctx,
        &headers,
        Access::RegistryWrite,
        "device create/update",
    )?;
    super::throttled(&ctx, crate::throttle::Operation::Registry).await?;
    let device: Device = serde_json::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("the body is not a device: {e}")))?;
    let if_match = header(&headers, "if-match").map(str::to_string);
    let id2 = id.clone();
    let device = ctx
        .store
        .exec(move |s, now| s.put_device(now, &id2, device, if_match.as_deref()))
        .await??;
    tracing::info!(device = %id, "device registered or updated");
    Ok(device_response(StatusCode::OK, device))
}

pub(super) async fn get_device(
    State(ctx): State<Arc<HubContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    authorize(&ctx, &headers, Access::RegistryRead, "device read")?;
    super::throttled(&ctx, crate::throttle::Operation::Registry).await?;
    let presence = ctx.sessions.presence();
    let device = ctx.store.read(|s| {
        s.registry
            .device(&id)
            .map(|d| live(d, s.queue_depth(&id), &presence))
    });
    let device = device.ok_or(crate::state::registry::RegistryError::DeviceNotFound(id))?;
    Ok(device_response(StatusCode::OK, device))
}

pub(super) async fn list_devices(
    State(ctx): State<Arc<HubContext>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Vec<Device>>, HttpError> {
    authorize(&ctx, &headers, Access::RegistryRead, "device list")?;
    super::throttled(&ctx, crate::throttle::Operation::Registry).await?;
    let top = match query.get("top") {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| HttpError::bad_request("top must be a number"))?,
        None => 1000,
    };
    let presence = ctx.sessions.presence();
    let devices = ctx.store.read(|s| {
        s.registry
            .devices()
            .take(top)
            .map(|d| live(d, s.queue_depth(&d.device_id), &presence))
            .collect()
    });
    Ok(Json(devices))
}

/// A registered device with what the registry shows of it now: its queue's depth, and
/// `Connected` (since when) while an MQTT session or AMQP receiving link of it is open.
fn live(
    device: &Device,
    depth: usize,
    presence: &HashMap<String, crate::sessions::Presence>,
) -> Device {
    let mut d = device.clone();
    d.cloud_to_device_message_count = depth as u64;
    if let Some(p) = presence.get(&d.device_id) {
        d.connection_state = "Connected".into();
        d.connection_state_updated_time = Some(c2d::timestamp::format_utc(p.since));
    }
    d
}

pub(super) async fn delete_device(
    State(ctx): State<Arc<HubContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, HttpError> {
    authorize(&ctx, &headers, Access::RegistryWrite, "device delete")?;
    super::throttled(&ctx, crate::throttle::Operation::Registry).await?;
    let if_match = header(&headers, "if-match").map(str::to_string);
    let id2 = id.clone();
    ctx.store
        .exec(move |s, _| s.delete_device(&id2, if_match.as_deref()))
        .await??;
    ctx.sessions.device_deleted(&id);
    tracing::info!(device = %id, "device deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn purge_queue(
    State(ctx): State<Arc<HubContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<PurgeResult>, HttpError> {
    authorize(&ctx, &headers, Access::Service, "queue purge")?;
    let id2 = id.clone();
    let total = ctx.store.exec(move |s, now| s.purge(now, &id2)).await??;
    tracing::info!(device = %id, purged = total, "queue purged");
    Ok(Json(PurgeResult {
        total_messages_purged: total,
        device_id: id,
        module_id: None,
    }))
}
