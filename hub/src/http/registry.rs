//! `PUT/GET/DELETE /devices/{id}`, `GET /devices`, `POST /devices/query` and `DELETE /devices/{id}/commands`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
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

/// Twins a query page holds when the request does not say (`x-ms-max-item-count`), and at most.
const QUERY_PAGE: (usize, usize) = (100, 1000);

/// `POST /devices/query`: IoT Hub's query of the device twins, as far as a C2D hub keeps
/// them (no tags, no desired or reported properties): `SELECT * FROM devices` only, paged by
/// `x-ms-max-item-count` and `x-ms-continuation` as IoT Hub pages it.
pub(super) async fn query_devices(
    State(ctx): State<Arc<HubContext>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    authorize(&ctx, &headers, Access::RegistryRead, "device query")?;
    super::throttled(&ctx, crate::throttle::Operation::Query).await?;
    #[derive(serde::Deserialize)]
    struct QuerySpec {
        query: String,
    }
    let spec: QuerySpec = serde_json::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("the body is not a query: {e}")))?;
    let words: Vec<String> = spec
        .query
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if words != ["select", "*", "from", "devices"] {
        return Err(HttpError::bad_request(format!(
            "this hub answers only SELECT * FROM devices (it keeps no twin to filter), not {:?}",
            spec.query
        )));
    }
    let size = match header(&headers, "x-ms-max-item-count") {
        Some(n) => n
            .trim()
            .parse::<usize>()
            .map_err(|_| HttpError::bad_request("x-ms-max-item-count must be a number"))?
            .clamp(1, QUERY_PAGE.1),
        None => QUERY_PAGE.0,
    };
    let after = match header(&headers, "x-ms-continuation") {
        Some(token) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    HttpError::bad_request("x-ms-continuation is not one this hub gave")
                })?,
        ),
        None => None,
    };
    let presence = ctx.sessions.presence();
    let (twins, next) = ctx.store.read(|s| {
        let mut devices = s.registry.devices_after(after.as_deref());
        let twins: Vec<serde_json::Value> = devices
            .by_ref()
            .take(size)
            .map(|d| twin(&live(d, s.queue_depth(&d.device_id), &presence)))
            .collect();
        let more = devices.next().is_some();
        let last = twins
            .last()
            .and_then(|t| t["deviceId"].as_str())
            .map(str::to_string);
        (twins, last.filter(|_| more))
    });
    let mut resp = Json(twins).into_response();
    resp.headers_mut()
        .insert("x-ms-item-type", HeaderValue::from_static("Twin"));
    if let Some(last) = next {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last);
        if let Ok(v) = HeaderValue::from_str(&token) {
            resp.headers_mut().insert("x-ms-continuation", v);
        }
    }
    Ok(resp)
}

/// A device as a query shows it: its twin's device-scoped fields.
fn twin(d: &Device) -> serde_json::Value {
    serde_json::json!({
        "deviceId": d.device_id,
        "etag": d.etag,
        "deviceEtag": d.etag,
        "status": d.status,
        "statusUpdateTime": d.status_updated_time,
        "connectionState": d.connection_state,
        "lastActivityTime": d.last_activity_time,
        "cloudToDeviceMessageCount": d.cloud_to_device_message_count,
        "authenticationType": d.authentication.kind,
        "version": 1,
        "properties": {
            "desired": { "$metadata": {}, "$version": 1 },
            "reported": { "$metadata": {}, "$version": 1 },
        },
    })
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
