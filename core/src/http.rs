//! HTTPS as IoT Hub answers it, shared by the registry client and the HTTPS device transport:
//! one way to build the client (the same TLS configuration as every other transport) and one
//! mapping from IoT Hub's error responses to [`ErrorKind`]s.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// An HTTP client that speaks TLS exactly as `tls` says (its roots, its client
/// certificate), HTTP/1.1 only, through `proxy` if one is given; the proxy environment
/// variables are not read (see [`Proxy::from_env`](crate::Proxy::from_env)).
pub(crate) fn client(
    tls: &rustls::ClientConfig,
    timeout: Duration,
    proxy: Option<&crate::Proxy>,
) -> Result<reqwest::Client> {
    let mut tls = tls.clone();
    // the hub and IoT Hub speak HTTP/1.1; reqwest is built without HTTP/2
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("c2d/", env!("CARGO_PKG_VERSION")));
    let builder = match proxy {
        Some(p) => builder.proxy(p.for_reqwest()?),
        None => builder.no_proxy(),
    };
    builder.build().map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot build the HTTP client: {e}"),
        )
    })
}

/// A request that got no answer: the network, TLS, or the time limit.
pub(crate) fn request_error(url: &str, e: reqwest::Error) -> Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if text.contains("certificate")
        || text.contains("UnknownIssuer")
        || text.contains("proxy authorization required")
    {
        // a certificate the client does not trust will not become trusted by retrying, nor
        // will a proxy accept the same credentials later
        ErrorKind::Unauthorized
    } else {
        ErrorKind::Unavailable
    };
    Error::new(kind, format!("{url}: {text}"))
}

/// Maps an IoT Hub error response (its status, the `iothub-errorcode` header, and the
/// `Message: "ErrorCode:X;…"` body) to an error of the right kind.
pub(crate) async fn status_error(resp: reqwest::Response) -> Error {
    let status = resp.status();
    let code_header = resp
        .headers()
        .get("iothub-errorcode")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("Message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or(body);
    let code = code_header.unwrap_or_else(|| {
        message
            .strip_prefix("ErrorCode:")
            .and_then(|s| s.split(';').next())
            .unwrap_or("")
            .to_string()
    });
    let kind = match (status.as_u16(), code.as_str()) {
        (_, "DeviceNotFound") | (404, _) => ErrorKind::DeviceNotFound,
        (_, "DeviceMessageLockLost") | (412, "") => ErrorKind::MessageLockLost,
        (_, "IotHubQuotaExceeded") => ErrorKind::QuotaExceeded,
        (401 | 403, _) => ErrorKind::Unauthorized,
        (413, _) => ErrorKind::MessageTooLarge,
        (429, _) => ErrorKind::Throttled,
        (500..=599, _) => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidArgument,
    };
    Error::new(kind, format!("HTTP {status} {code}: {message}"))
}

/// Reads a JSON response body.
#[cfg(feature = "service")]
pub(crate) async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("reading the response: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "unexpected response body ({e}): {}",
                String::from_utf8_lossy(&bytes)
            ),
        )
    })
}
