//! An AMQP connection with one session, over TLS or over WebSockets (directly or through a
//! proxy), and CBS `put-token`.

use std::sync::Arc;
use std::time::Duration;

use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::messaging::{
    message::Body, AmqpValue, ApplicationProperties, MessageId, Properties,
};
use fe2o3_amqp::types::primitives::{OrderedMap, SimpleValue, Value};
use fe2o3_amqp::{Receiver, Sender};

use async_tungstenite::tokio::TokioAdapter;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use ws_stream_tungstenite::WsStream;

use crate::error::{Error, ErrorKind, Result};

/// An error of the network or TLS: worth retrying.
pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("{what}: {e}"))
}

/// Opens TCP (through `proxy`'s `CONNECT` tunnel if one is given) and TLS to `host:port`,
/// checking the certificate against `host`.
pub(crate) async fn connect_tls(
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    proxy: Option<&crate::Proxy>,
) -> Result<TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| Error::invalid_argument(format!("'{host}' is not a valid host name")))?;
    let connect = async {
        let tcp = match proxy {
            Some(p) => p.connect(host, port, timeout).await?,
            None => TcpStream::connect((host, port))
                .await
                .map_err(|e| unavailable(&format!("connecting to {host}:{port}"), e))?,
        };
        let _ = tcp.set_nodelay(true);
        tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(host, port, e))
    };
    tokio::time::timeout(timeout, connect).await.map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("connecting to {host}:{port} took longer than {timeout:?}"),
        )
    })?
}

fn tls_error(host: &str, port: u16, e: std::io::Error) -> Error {
    let text = e.to_string();
    // a certificate the client does not trust will not become trusted by retrying
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        Error::new(
            ErrorKind::Unauthorized,
            format!("TLS with {host}:{port}: {text} (is the hub's CA trusted?)"),
        )
    } else {
        unavailable(&format!("TLS with {host}:{port}"), text)
    }
}

/// The WebSocket subprotocols offered for AMQP, in order of preference: `AMQPWSB10`, which
/// the official Azure IoT SDKs (C, C#, Java, Node) ask IoT Hub for, then `amqp`, the name in
/// OASIS's AMQP WebSocket binding. Whichever the server picks is used.
const AMQP_WS_SUBPROTOCOLS: &str = "AMQPWSB10, amqp";

/// Upgrades `stream` (TLS already made) to a WebSocket on `url` carrying AMQP.
async fn websocket_upgrade(
    url: &str,
    stream: TlsStream<TcpStream>,
) -> Result<WsStream<TokioAdapter<TlsStream<TcpStream>>>> {
    use async_tungstenite::tungstenite::client::IntoClientRequest;
    use async_tungstenite::tungstenite::http::HeaderValue;
    use async_tungstenite::tungstenite::Error as WsError;
    let mut request = url
        .into_client_request()
        .map_err(|e| Error::invalid_argument(format!("WebSocket address {url}: {e}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(AMQP_WS_SUBPROTOCOLS),
    );
    match async_tungstenite::tokio::client_async(request, stream).await {
        Ok((ws, _response)) => Ok(WsStream::new(ws)),
        Err(WsError::Http(response)) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let reason = format!(
                "the server refused the WebSocket upgrade on {url} (offered {AMQP_WS_SUBPROTOCOLS}): \
                 HTTP {status} {}",
                body.trim()
            );
            // a refused credential is the hub's answer, not the network's
            Err(match status.as_u16() {
                401 | 403 => Error::new(ErrorKind::Unauthorized, reason),
                _ => Error::new(ErrorKind::Unavailable, reason),
            })
        }
        Err(WsError::Protocol(e)) => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "the server's WebSocket upgrade on {url} was not one c2d can use \
                 (offered {AMQP_WS_SUBPROTOCOLS}): {e}"
            ),
        )),
        Err(e) => Err(unavailable("WebSocket handshake", e)),
    }
}

/// An open AMQP connection with one session.
pub struct AmqpSession {
    /// The connection.
    pub connection: ConnectionHandle<()>,
    /// The session.
    pub session: SessionHandle<()>,
}

impl AmqpSession {
    /// Opens AMQP (no SASL: authentication is CBS, or the TLS client certificate) over TLS,
    /// or over a WebSocket on `/$iothub/websocket` when `websocket` is set (through `proxy`
    /// if one is given).
    pub async fn open(
        host: &str,
        port: u16,
        websocket: bool,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
        proxy: Option<&crate::Proxy>,
    ) -> Result<AmqpSession> {
        let stream = connect_tls(host, port, tls, timeout, proxy).await?;
        let builder = fe2o3_amqp::Connection::builder()
            .container_id(format!("c2d-{}", uuid::Uuid::new_v4()))
            .hostname(host)
            .max_frame_size(65536u32);
        let open = async {
            let mut connection = if websocket {
                let url = format!("wss://{host}:{port}/$iothub/websocket");
                builder
                    .open_with_stream(websocket_upgrade(&url, stream).await?)
                    .await
            } else {
                builder.open_with_stream(stream).await
            }
            .map_err(|e| unavailable("opening AMQP", format!("{e:?}")))?;
            let session = fe2o3_amqp::Session::begin(&mut connection)
                .await
                .map_err(|e| unavailable("beginning an AMQP session", format!("{e:?}")))?;
            Ok(AmqpSession {
                connection,
                session,
            })
        };
        tokio::time::timeout(timeout, open).await.map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("opening AMQP with {host}:{port} took longer than {timeout:?}"),
            )
        })?
    }

    /// Sends a CBS `put-token` for `audience` and checks the hub's answer (200 or 202).
    pub async fn put_token(
        &mut self,
        audience: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<()> {
        let session = &mut self.session;
        let exchange = async {
            let mut sender = Sender::attach(
                session,
                format!("cbs-sender-{}", uuid::Uuid::new_v4()),
                "$cbs",
            )
            .await
            .map_err(|e| unavailable("attaching $cbs", format!("{e:?}")))?;
            let mut receiver = Receiver::builder()
                .name(format!("cbs-receiver-{}", uuid::Uuid::new_v4()))
                .source("$cbs")
                .target("cbs")
                .attach(session)
                .await
                .map_err(|e| unavailable("attaching $cbs", format!("{e:?}")))?;
            let mut props = OrderedMap::new();
            props.insert(
                "operation".to_string(),
                SimpleValue::String("put-token".into()),
            );
            props.insert(
                "type".to_string(),
                SimpleValue::String("servicebus.windows.net:sastoken".into()),
            );
            props.insert(
                "name".to_string(),
                SimpleValue::String(audience.to_string()),
            );
            let id = uuid::Uuid::new_v4().to_string();
            let request = fe2o3_amqp::types::messaging::Message {
                header: None,
                delivery_annotations: None,
                message_annotations: None,
                properties: Some(Properties {
                    message_id: Some(MessageId::String(id.clone())),
                    reply_to: Some("cbs".into()),
                    to: Some("$cbs".into()),
                    ..Default::default()
                }),
                application_properties: Some(ApplicationProperties(props)),
                body: Body::Value(AmqpValue(Value::String(token.to_string()))),
                footer: None,
            };
            sender
                .send(request)
                .await
                .map_err(|e| unavailable("sending put-token", format!("{e:?}")))?;
            let reply = receiver
                .recv::<Body<Value>>()
                .await
                .map_err(|e| unavailable("reading the put-token answer", format!("{e:?}")))?;
            let _ = receiver.accept(&reply).await;
            let _ = sender.close().await;
            let _ = receiver.close().await;
            cbs_outcome(reply.message())
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("CBS put-token took longer than {timeout:?}"),
            )
        })?
    }

    /// Closes the session and the connection.
    pub async fn close(mut self) {
        let _ = self.session.end().await;
        let _ = self.connection.close().await;
    }
}

/// What a CBS reply says of a put-token: its `status-code` (200 or 202 accepted; 401 and 403
/// refused; 404 no such device) and `status-description` application properties.
pub(crate) fn cbs_outcome(m: &crate::amqp::AmqpMessage) -> Result<()> {
    let app = m.application_properties.as_ref().map(|p| &p.0);
    let status = app
        .and_then(|p| p.get("status-code"))
        .and_then(|v| match v {
            SimpleValue::Int(n) => Some(*n),
            SimpleValue::Uint(n) => i32::try_from(*n).ok(),
            SimpleValue::Long(n) => i32::try_from(*n).ok(),
            _ => None,
        });
    let description = app
        .and_then(|p| p.get("status-description"))
        .map(|v| match v {
            SimpleValue::String(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .unwrap_or_default();
    match status {
        Some(200 | 202) => Ok(()),
        Some(401 | 403) => Err(Error::new(
            ErrorKind::Unauthorized,
            format!("CBS refused the token: {description}"),
        )),
        Some(404) => Err(Error::new(
            ErrorKind::DeviceNotFound,
            format!("CBS: {description}"),
        )),
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("CBS answered {other:?}: {description}"),
        )),
    }
}
