//! AMQP over WebSockets against servers that accept one subprotocol only: a gateway that takes
//! only `AMQPWSB10` (what every official Azure IoT SDK asks IoT Hub for) and one that takes
//! only `amqp` (the OASIS binding's name). The device and the service client connect through
//! both. A server that refuses the upgrade is logged at `warn`, with its reason, once per
//! series of retries. And the hub logs a TLS handshake it refuses at `warn`.
//!
//! The gateway is a real WebSocket server on loopback, in front of the hub the test starts: it
//! ends TLS with a certificate of the hub's development CA, and carries the AMQP bytes inside
//! the WebSocket to the hub's AMQP port.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::Message as WsMessage;
use c2d::{
    DeviceClient, ErrorKind, Message, RetryPolicy, ServiceClient, ServiceTransport, Transport,
};
use c2d_hub::{HubConfig, LocalHub};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(15);

/// Everything the engine and the hub log in this test binary (at `debug` and above).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .init();
        logs
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines logged so far that contain every one of `words`.
fn logged(words: &[&str]) -> Vec<String> {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .map(str::to_string)
        .collect()
}

async fn hub(dir: &tempfile::TempDir) -> LocalHub {
    logs();
    let hub = LocalHub::start(HubConfig::ephemeral(dir.path()))
        .await
        .unwrap();
    hub.create_device("dev1").await.unwrap();
    hub
}

/// A WebSocket server on `/$iothub/websocket` that accepts the upgrade only when the client
/// offers `accepts` (answering 400 otherwise), and records what each client offered.
struct Gateway {
    port: u16,
    offered: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    async fn start(hub: &LocalHub, data_dir: &std::path::Path, accepts: &'static str) -> Gateway {
        // a server certificate for localhost from the hub's CA, which the clients trust
        let ca_pem = std::fs::read_to_string(data_dir.join("ca.pem")).unwrap();
        let ca_key =
            rcgen::KeyPair::from_pem(&std::fs::read_to_string(data_dir.join("ca.key")).unwrap())
                .unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let mut roots = rustls::RootCertStore::empty();
        for c in c2d::tls::certificates_from_pem(hub.ca_pem().as_bytes()).unwrap() {
            roots.add(c).unwrap();
        }
        let to_hub = tokio_rustls::TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let offered = Arc::new(Mutex::new(Vec::new()));
        let (seen, amqp_port) = (offered.clone(), hub.amqp_port());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, to_hub, seen) = (acceptor.clone(), to_hub.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // tungstenite's callback type: its error is the whole HTTP response
                    #[allow(clippy::result_large_err)]
                    let choose = |request: &Request, mut response: Response| {
                        let offer = request
                            .headers()
                            .get("Sec-WebSocket-Protocol")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        seen.lock().unwrap().push(offer.clone());
                        if request.uri().path() != "/$iothub/websocket"
                            || !offer.split(',').any(|p| p.trim() == accepts)
                        {
                            let mut refusal = ErrorResponse::new(Some(format!(
                                "this gateway speaks only {accepts}"
                            )));
                            *refusal.status_mut() = http::StatusCode::BAD_REQUEST;
                            return Err(refusal);
                        }
                        response
                            .headers_mut()
                            .insert("Sec-WebSocket-Protocol", accepts.parse().unwrap());
                        Ok(response)
                    };
                    let Ok(ws) = async_tungstenite::tokio::accept_hdr_async(tls, choose).await
                    else {
                        return;
                    };
                    let tcp = TcpStream::connect(("127.0.0.1", amqp_port)).await.unwrap();
                    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                    let hub_side = to_hub.connect(name, tcp).await.unwrap();
                    relay(ws, hub_side).await;
                });
            }
        });
        Gateway { port, offered }
    }

    fn offered(&self) -> Vec<String> {
        self.offered.lock().unwrap().clone()
    }
}

/// Carries WebSocket binary messages to `hub` as bytes, and its bytes back as messages.
async fn relay<W, H>(ws: async_tungstenite::WebSocketStream<W>, hub: H)
where
    W: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
    H: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut ws_out, mut ws_in) = ws.split();
    let (mut hub_in, mut hub_out) = tokio::io::split(hub);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            m = ws_in.next() => match m {
                Some(Ok(WsMessage::Binary(b))) => {
                    if hub_out.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            n = hub_in.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if ws_out.send(WsMessage::Binary(buf[..n].to_vec().into())).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// The device receives, through the gateway, what the service sends through it.
async fn through(accepts: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(&dir).await;
    let gateway = Gateway::start(&hub, dir.path(), accepts).await;
    let service = ServiceClient::builder(&hub.owner_connection_string())
        .unwrap()
        .transport(ServiceTransport::AmqpWs)
        .trusted_ca_pem(hub.ca_pem())
        .https_port(gateway.port)
        .connect();
    let service = tokio::time::timeout(WAIT, service)
        .await
        .expect("the service client connects through the gateway")
        .unwrap();
    let device = DeviceClient::builder(&hub.device_connection_string("dev1").unwrap())
        .unwrap()
        .transport(Transport::AmqpWs)
        .trusted_ca_pem(hub.ca_pem())
        .https_port(gateway.port)
        .connect();
    let device = tokio::time::timeout(WAIT, device)
        .await
        .expect("the device connects through the gateway")
        .unwrap();
    service
        .send("dev1", Message::new(format!("via {accepts}")))
        .await
        .unwrap();
    let m = tokio::time::timeout(WAIT, device.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.body(), format!("via {accepts}").as_bytes());
    m.complete().await.unwrap();
    device.close().await;
    service.close().await;
    // both offered AMQPWSB10 first, then amqp
    let offered = gateway.offered();
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert!(
        offered.iter().all(|o| o == "AMQPWSB10, amqp"),
        "{offered:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_speaks_only_amqpwsb10() {
    through("AMQPWSB10").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_speaks_only_amqp() {
    through("amqp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upgrade_is_logged_once_per_series_of_retries() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(&dir).await;
    let gateway = Gateway::start(&hub, dir.path(), "mqtt").await;
    let cs = hub.device_connection_string("dev1").unwrap();
    let connecting = DeviceClient::builder(&cs)
        .unwrap()
        .transport(Transport::AmqpWs)
        .trusted_ca_pem(hub.ca_pem())
        .https_port(gateway.port)
        .retry(RetryPolicy::fixed(Duration::from_millis(50)))
        .connect();
    // it keeps trying (the refusal may be a gateway's passing trouble) ...
    assert!(tokio::time::timeout(Duration::from_secs(2), connecting)
        .await
        .is_err());
    let attempts = gateway.offered().len();
    assert!(attempts >= 5, "{attempts} attempts");
    // ... and says why, once, at warn
    let port = format!("localhost:{}", gateway.port);
    let warned = logged(&["WARN", &port]);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(warned[0].contains("HTTP 400"), "{}", warned[0]);
    assert!(
        warned[0].contains("this gateway speaks only mqtt"),
        "{}",
        warned[0]
    );
    assert!(warned[0].contains("AMQPWSB10, amqp"), "{}", warned[0]);

    // the service client says it once per send that retries, too
    let service = ServiceClient::builder(&hub.owner_connection_string())
        .unwrap()
        .transport(ServiceTransport::AmqpWs)
        .trusted_ca_pem(hub.ca_pem())
        .https_port(gateway.port)
        .retry(RetryPolicy::custom(|attempt, _| {
            (attempt < 4).then_some(Duration::from_millis(20))
        }))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(service.kind(), ErrorKind::Unavailable, "{service}");
    assert!(service.to_string().contains("HTTP 400"), "{service}");
    assert_eq!(logged(&["WARN", &port]).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_logs_a_refused_tls_handshake_at_warn() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(&dir).await;
    // plain HTTP where TLS is due: rustls refuses it, and the hub says so with the reason
    let mut tcp = TcpStream::connect(("127.0.0.1", hub.mqtt_port()))
        .await
        .unwrap();
    let local = tcp.local_addr().unwrap().to_string();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let _ = tcp.read(&mut [0u8; 64]).await;
    for _ in 0..50 {
        if !logged(&["WARN", &local]).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warned = logged(&["WARN", &local]);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(warned[0].contains("TLS handshake refused"), "{}", warned[0]);
    assert!(warned[0].contains("listener=\"mqtt\""), "{}", warned[0]);
    // a client that connects and leaves (a port probe) is no warning
    let probe = TcpStream::connect(("127.0.0.1", hub.mqtt_port()))
        .await
        .unwrap();
    let probe_addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(logged(&["WARN", &probe_addr]).is_empty());
}
