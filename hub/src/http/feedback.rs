//! Feedback over REST, as the Python `azure-iot-hub` SDK reads it:
//! receive a batch with its lock token in `ETag`, then complete or abandon it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use c2d::service::feedback::{encode_batch, FEEDBACK_CONTENT_TYPE};

use super::{authorize, HttpError, HTTP_OWNER};
use crate::auth::Access;
use crate::context::HubContext;
use crate::state::Settlement;

/// `GET /messages/serviceBound/feedback`: 204 when empty, else one batch, locked.
pub(super) async fn receive(
    State(ctx): State<Arc<HubContext>>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    authorize(&ctx, &headers, Access::Service, "feedback request")?;
    let batch = ctx
        .store
        .exec(|s, now| s.feedback_receive(now, HTTP_OWNER))
        .await?;
    let Some(batch) = batch else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut resp = (StatusCode::OK, Body::from(encode_batch(&batch.records))).into_response();
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("etag", format!("\"{}\"", batch.lock_token));
    set("content-type", FEEDBACK_CONTENT_TYPE.to_string());
    set(
        "iothub-enqueuedtime",
        c2d::timestamp::format_utc(batch.enqueued),
    );
    set("iothub-deliverycount", batch.delivery_count.to_string());
    set(
        "iothub-userid",
        c2d::connection_string::hub_name_of(&ctx.host_name).to_string(),
    );
    Ok(resp)
}

async fn settle(
    ctx: &HubContext,
    headers: &HeaderMap,
    lock: &str,
    how: Settlement,
) -> Result<StatusCode, HttpError> {
    authorize(ctx, headers, Access::Service, "feedback request")?;
    let lock_lost = || {
        HttpError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            412001,
            "the feedback lock was lost or has expired",
        )
    };
    let token = super::lock_token(lock).ok_or_else(lock_lost)?;
    let result = ctx
        .store
        .exec(move |s, now| s.feedback_settle(now, token, how))
        .await?;
    result
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(|_| lock_lost())
}

/// `DELETE /messages/serviceBound/feedback/{lockToken}`: complete.
pub(super) async fn complete(
    State(ctx): State<Arc<HubContext>>,
    Path(lock): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, HttpError> {
    settle(&ctx, &headers, &lock, Settlement::Complete).await
}

/// `POST /messages/serviceBound/feedback/{lockToken}/abandon`.
pub(super) async fn abandon(
    State(ctx): State<Arc<HubContext>>,
    Path(lock): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, HttpError> {
    settle(&ctx, &headers, &lock, Settlement::Abandon).await
}
