//! `/admin/faults` on the HTTPS port: the fault API of a running hub ([`crate::faults`]), for
//! `c2d hub fault` and for tests in any language. Only the page's token opens it, as a bearer
//! token: no SAS token does (not the owner's), so no device or service credential can make
//! the hub misbehave.
//!
//! `GET` lists the faults in force, `POST` applies one (a [`Fault`] as JSON), `DELETE`
//! clears them all.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::ui::{bearer_is_page_token, bearer_unauthorized};
use crate::context::HubContext;
use crate::faults::{Fault, Faults};

/// The admin routes.
pub(super) fn routes() -> Router<Arc<HubContext>> {
    Router::new().route("/admin/faults", get(list).post(apply).delete(clear))
}

/// The fault API for a request with the page's token; `None` (the refusal counted) for any
/// other.
fn admitted(ctx: &Arc<HubContext>, headers: &HeaderMap) -> Option<Faults> {
    match bearer_is_page_token(ctx, headers) {
        Some(true) => Some(Faults::new(ctx.clone())),
        Some(false) => None,
        None => {
            // a SAS token (of any policy or device) or nothing: never enough here
            ctx.refuse("admin");
            None
        }
    }
}

/// `GET /admin/faults`: `{"faults": [...], "acks_lost": n}`.
async fn list(State(ctx): State<Arc<HubContext>>, headers: HeaderMap) -> Response {
    match admitted(&ctx, &headers) {
        Some(faults) => Json(json!({
            "faults": faults.active(),
            "acks_lost": faults.acks_lost(),
        }))
        .into_response(),
        None => bearer_unauthorized(),
    }
}

/// `POST /admin/faults` with a fault: `{"fault": name, "affected": n}`, or 400 with what is
/// wrong with it.
async fn apply(
    State(ctx): State<Arc<HubContext>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(faults) = admitted(&ctx, &headers) else {
        return bearer_unauthorized();
    };
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "message": format!("not a fault: {e}") })),
            )
                .into_response()
        }
    };
    match faults.apply(&fault) {
        Ok(affected) => {
            Json(json!({ "fault": fault.name(), "affected": affected })).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "message": e.to_string() })),
        )
            .into_response(),
    }
}

/// `DELETE /admin/faults`: 204.
async fn clear(State(ctx): State<Arc<HubContext>>, headers: HeaderMap) -> Response {
    match admitted(&ctx, &headers) {
        Some(faults) => {
            faults.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        None => bearer_unauthorized(),
    }
}
