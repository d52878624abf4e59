//! IoT Hub's REST error responses: the status, an `iothub-errorcode` header, and a body whose
//! `Message` is `ErrorCode:<Name>;<text>` (Node parses that layout; C# reads the header).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::state::registry::RegistryError;

/// A REST error.
#[derive(Debug)]
pub(crate) struct HttpError {
    status: StatusCode,
    code: &'static str,
    number: u32,
    text: String,
}

impl HttpError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        number: u32,
        text: impl Into<String>,
    ) -> Self {
        HttpError {
            status,
            code,
            number,
            text: text.into(),
        }
    }

    pub(crate) fn bad_request(text: impl Into<String>) -> Self {
        HttpError::new(StatusCode::BAD_REQUEST, "ArgumentInvalid", 400004, text)
    }

    pub(crate) fn throttled() -> Self {
        HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            429001,
            "the hub's rate of these requests is exceeded; back off and retry",
        )
    }

    pub(crate) fn unavailable(text: impl Into<String>) -> Self {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            503001,
            text,
        )
    }
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        HttpError::new(
            StatusCode::UNAUTHORIZED,
            "IotHubUnauthorizedAccess",
            401002,
            e.to_string(),
        )
    }
}

impl From<RegistryError> for HttpError {
    fn from(e: RegistryError) -> Self {
        let text = e.to_string();
        match e {
            RegistryError::DeviceNotFound(_) => {
                HttpError::new(StatusCode::NOT_FOUND, "DeviceNotFound", 404001, text)
            }
            RegistryError::DeviceAlreadyExists(_) => {
                HttpError::new(StatusCode::CONFLICT, "DeviceAlreadyExists", 409001, text)
            }
            RegistryError::PreconditionFailed(_) => HttpError::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                412001,
                text,
            ),
            RegistryError::Invalid(_) => HttpError::bad_request(text),
        }
    }
}

impl From<crate::store::StoreError> for HttpError {
    fn from(e: crate::store::StoreError) -> Self {
        HttpError::unavailable(e.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let tracking = uuid::Uuid::new_v4().simple().to_string();
        let stamp = c2d::timestamp::format_utc(std::time::SystemTime::now());
        let body = serde_json::json!({
            "Message": format!("ErrorCode:{};{}", self.code, self.text),
            "ExceptionMessage": format!("Tracking ID:{tracking}-G:0-TimeStamp:{stamp}"),
            "errorCode": self.number,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(self.code) {
            resp.headers_mut().insert("iothub-errorcode", v);
        }
        resp
    }
}

/// Any path the hub does not serve.
pub(crate) async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> HttpError {
    tracing::warn!(%method, path = %uri.path(), "HTTPS: no endpoint");
    HttpError::new(
        StatusCode::NOT_FOUND,
        "IotHubNotFound",
        404000,
        format!("no endpoint at {}", uri.path()),
    )
}
