//! HTTP CONNECT proxies: every transport a proxy can carry (MQTT and AMQP over WebSockets,
//! HTTPS) on the device and the service client, through a real proxy on loopback that the
//! test starts (it speaks `CONNECT` with basic authentication and counts its tunnels); wrong
//! proxy credentials; a proxy with plain MQTT; and `HTTPS_PROXY`, read only when asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use c2d::{
    Ack, DeviceClient, ErrorKind, FeedbackStatus, Message, Proxy, RetryPolicy, ServiceClient,
    ServiceTransport, Transport,
};
use c2d_hub::{HubConfig, LocalHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(15);

/// A CONNECT proxy on 127.0.0.1 that wants `user:secret` and records where it tunnelled.
struct TestProxy {
    port: u16,
    tunnels: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
}

impl TestProxy {
    async fn start() -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (t, r) = (tunnels.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(tunnel(client, t.clone(), r.clone()));
            }
        });
        TestProxy {
            port,
            tunnels,
            refused,
        }
    }

    fn proxy(&self) -> Proxy {
        Proxy::new("127.0.0.1", self.port).basic_auth("user", "secret")
    }

    fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

/// Serves one client: reads the `CONNECT` request, checks its credentials, dials the target
/// and copies bytes both ways.
async fn tunnel(
    mut client: TcpStream,
    tunnels: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || client.read_exact(&mut byte).await.is_err() {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("user:secret")
    );
    let authorized = head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.eq_ignore_ascii_case("proxy-authorization") && v.trim() == want)
    });
    if !authorized {
        refused.fetch_add(1, Ordering::SeqCst);
        let _ = client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    tunnels.lock().unwrap().push(target);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_proxied_transport_reaches_the_hub_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::ephemeral(dir.path());
    config.limits.feedback_interval = Duration::ZERO;
    let hub = LocalHub::start(config).await.unwrap();
    let proxy = TestProxy::start().await;
    let https = format!("localhost:{}", hub.https_port());

    // the service: AMQP over WebSockets, the registry and feedback, all through the proxy
    let service = ServiceClient::builder(&hub.owner_connection_string())
        .unwrap()
        .transport(ServiceTransport::AmqpWs)
        .trusted_ca_pem(hub.ca_pem())
        .https_port(hub.https_port())
        .proxy(proxy.proxy())
        .connect()
        .await
        .unwrap();
    let cs = service
        .registry()
        .create_device("dev1")
        .await
        .unwrap()
        .connection_string(hub.host_name())
        .unwrap();
    assert!(!proxy.tunnels().is_empty());
    assert!(
        proxy.tunnels().iter().all(|t| *t == https),
        "{:?}",
        proxy.tunnels()
    );

    for transport in [Transport::MqttWs, Transport::AmqpWs, Transport::Https] {
        let before = proxy.tunnels().len();
        let device = DeviceClient::builder(&cs)
            .unwrap()
            .transport(transport)
            .trusted_ca_pem(hub.ca_pem())
            .https_port(hub.https_port())
            .poll_interval(Duration::from_millis(50))
            .retry(RetryPolicy::None)
            .proxy(proxy.proxy())
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        assert!(
            proxy.tunnels().len() > before,
            "{transport} did not use the proxy"
        );
        let sent = service
            .send(
                "dev1",
                Message::new(format!("via proxy, {transport}")).ack(Ack::Full),
            )
            .await
            .unwrap();
        let m = tokio::time::timeout(WAIT, device.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(m.body(), format!("via proxy, {transport}").as_bytes());
        m.complete().await.unwrap();
        let record = tokio::time::timeout(WAIT, sent.outcome())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, FeedbackStatus::Success);
        device.close().await;
    }
    assert!(
        proxy.tunnels().iter().all(|t| *t == https),
        "{:?}",
        proxy.tunnels()
    );

    // wrong proxy credentials: refused (407), not retried
    let refused = proxy.refused.load(Ordering::SeqCst);
    let wrong = Proxy::new("127.0.0.1", proxy.port).basic_auth("user", "wrong");
    for transport in [Transport::MqttWs, Transport::AmqpWs, Transport::Https] {
        let err = DeviceClient::builder(&cs)
            .unwrap()
            .transport(transport)
            .trusted_ca_pem(hub.ca_pem())
            .https_port(hub.https_port())
            .retry(RetryPolicy::None)
            .proxy(wrong.clone())
            .connect()
            .await
            .unwrap_err();
        assert!(err.kind() == ErrorKind::Unauthorized, "{transport}: {err}");
    }
    assert!(proxy.refused.load(Ordering::SeqCst) >= refused + 3);

    // a proxy cannot carry plain MQTT or AMQP: said at once
    for transport in [Transport::Mqtt, Transport::Amqp] {
        let err = DeviceClient::builder(&cs)
            .unwrap()
            .transport(transport)
            .proxy(proxy.proxy())
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{transport}");
    }
    let err = ServiceClient::builder(&hub.owner_connection_string())
        .unwrap()
        .proxy(proxy.proxy())
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // HTTPS_PROXY is read only when asked: a client without a proxy ignores it (this test
    // binary runs this one test, so the variable is set for nothing else)
    std::env::set_var(
        "HTTPS_PROXY",
        format!("http://user:secret@127.0.0.1:{}", proxy.port),
    );
    let before = proxy.tunnels().len();
    let direct = DeviceClient::builder(&cs)
        .unwrap()
        .transport(Transport::Https)
        .trusted_ca_pem(hub.ca_pem())
        .https_port(hub.https_port())
        .poll_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    assert_eq!(
        proxy.tunnels().len(),
        before,
        "HTTPS_PROXY was used without being asked"
    );
    direct.close().await;
    let from_env = Proxy::from_env().unwrap().expect("HTTPS_PROXY is set");
    assert_eq!(from_env, proxy.proxy());
    let via_env = DeviceClient::builder(&cs)
        .unwrap()
        .transport(Transport::Https)
        .trusted_ca_pem(hub.ca_pem())
        .https_port(hub.https_port())
        .proxy(from_env)
        .connect()
        .await
        .unwrap();
    assert!(proxy.tunnels().len() > before);
    via_env.close().await;
    std::env::remove_var("HTTPS_PROXY");

    service.close().await;
    hub.stop().await;
}
