//! The clients under faults: a hub restarted under them, a hub down while sending, short-lived
//! SAS tokens, wrong credentials, and a service client closed right after an outcome.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use c2d::{
    ConnectionStatus, DeviceClient, ErrorKind, Message, RetryPolicy, ServiceClient, Transport,
};
use c2d_hub::{HubConfig, LocalHub};

const WAIT: Duration = Duration::from_secs(20);

struct Hub {
    hub: Option<LocalHub>,
    dir: tempfile::TempDir,
    ports: (u16, u16, u16),
}

impl Hub {
    async fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HubConfig::ephemeral(dir.path());
        config.limits.feedback_interval = Duration::ZERO;
        let hub = LocalHub::start(config).await.unwrap();
        let ports = (hub.mqtt_port(), hub.amqp_port(), hub.https_port());
        Hub {
            hub: Some(hub),
            dir,
            ports,
        }
    }

    fn hub(&self) -> &LocalHub {
        self.hub.as_ref().expect("running")
    }

    async fn stop(&mut self) {
        self.hub.take().expect("running").stop().await;
    }

    /// Starts again on the same data directory and ports.
    async fn restart(&mut self) {
        let mut config = HubConfig::ephemeral(self.dir.path());
        config.limits.feedback_interval = Duration::ZERO;
        (config.mqtt_port, config.amqp_port, config.https_port) = self.ports;
        self.hub = Some(LocalHub::start(config).await.unwrap());
    }

    fn ca(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }

    fn owner(&self) -> String {
        self.hub().owner_connection_string()
    }

    async fn service(&self, retry: RetryPolicy) -> c2d::Result<ServiceClient> {
        ServiceClient::builder(&self.owner())?
            .trusted_ca_pem(self.ca())
            .port(self.ports.1)
            .https_port(self.ports.2)
            .retry(retry)
            .connect()
            .await
    }

    async fn device(
        &self,
        cs: &str,
        t: Transport,
        retry: RetryPolicy,
        ttl: Option<Duration>,
    ) -> c2d::Result<DeviceClient> {
        let port = match t {
            Transport::Mqtt => self.ports.0,
            Transport::Amqp => self.ports.1,
            _ => self.ports.2,
        };
        let mut b = DeviceClient::builder(cs)?
            .transport(t)
            .trusted_ca_pem(self.ca())
            .port(port)
            .retry(retry);
        if let Some(ttl) = ttl {
            b = b.sas_token_ttl(ttl);
        }
        b.connect().await
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy::fixed(Duration::from_millis(100))
}

/// Receives until every body in `want` was seen (duplicates are allowed: at least once).
async fn receive_all(device: &DeviceClient, want: &HashSet<String>) {
    let mut seen = HashSet::new();
    tokio::time::timeout(WAIT, async {
        while !want.is_subset(&seen) {
            let m = device.recv().await.unwrap().expect("open");
            seen.insert(String::from_utf8_lossy(m.body()).into_owned());
            // a completion whose connection dropped is redelivered: that is fine here
            let _ = m.complete().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("missing: {:?}", want.difference(&seen).collect::<Vec<_>>()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_restart_loses_nothing_and_clients_reconnect_by_themselves() {
    let mut h = Hub::start().await;
    let service = h.service(fast()).await.unwrap();
    let mut devices = Vec::new();
    for (id, t) in [
        ("over-mqtt", Transport::Mqtt),
        ("over-amqp", Transport::Amqp),
    ] {
        let cs = service
            .registry()
            .create_device(id)
            .await
            .unwrap()
            .connection_string("localhost")
            .unwrap();
        devices.push((id, h.device(&cs, t, fast(), None).await.unwrap()));
    }
    let mut status = devices[1].1.status();
    for (id, device) in &devices {
        let before: HashSet<String> = (0..5).map(|i| format!("{id}-before-{i}")).collect();
        for body in &before {
            service.send(id, Message::new(body.clone())).await.unwrap();
        }
        receive_all(device, &before).await;
    }
    h.stop().await;
    h.restart().await;
    // the service reconnects on its next send; the devices by themselves
    for (id, device) in &devices {
        let after: HashSet<String> = (0..5).map(|i| format!("{id}-after-{i}")).collect();
        for body in &after {
            service.send(id, Message::new(body.clone())).await.unwrap();
        }
        receive_all(device, &after).await;
    }
    let mut saw = Vec::new();
    while let Ok(Some(s)) = tokio::time::timeout(Duration::from_millis(100), status.recv()).await {
        saw.push(s);
    }
    assert!(
        saw.iter()
            .any(|s| matches!(s, ConnectionStatus::Disconnected(_))),
        "{saw:?}"
    );
    assert_eq!(status.current(), ConnectionStatus::Connected);
    for (_, d) in devices {
        d.close().await;
    }
    service.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_while_the_hub_is_down_waits_and_succeeds() {
    let mut h = Hub::start().await;
    let service = h
        .service(RetryPolicy::fixed(Duration::from_millis(200)))
        .await
        .unwrap();
    let cs = service
        .registry()
        .create_device("dev1")
        .await
        .unwrap()
        .connection_string("localhost")
        .unwrap();
    h.stop().await;
    let sending = tokio::spawn({
        let service = service.clone();
        async move { service.send("dev1", Message::new("sent while down")).await }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !sending.is_finished(),
        "the send retries while the hub is down"
    );
    h.restart().await;
    tokio::time::timeout(WAIT, sending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let device = h.device(&cs, Transport::Amqp, fast(), None).await.unwrap();
    receive_all(&device, &HashSet::from(["sent while down".to_string()])).await;
    device.close().await;
    service.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_tokens_are_renewed() {
    let h = Hub::start().await;
    let service = ServiceClient::builder(&h.owner())
        .unwrap()
        .trusted_ca_pem(h.ca())
        .port(h.ports.1)
        .https_port(h.ports.2)
        .sas_token_ttl(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let mut devices = Vec::new();
    for (id, t) in [("m", Transport::Mqtt), ("a", Transport::Amqp)] {
        let cs = service
            .registry()
            .create_device(id)
            .await
            .unwrap()
            .connection_string("localhost")
            .unwrap();
        devices.push((
            id,
            h.device(&cs, t, fast(), Some(Duration::from_secs(2)))
                .await
                .unwrap(),
        ));
    }
    let mut mqtt_status = devices[0].1.status();
    tokio::time::sleep(Duration::from_secs(5)).await; // two renewals
    for (id, device) in &devices {
        service
            .send(id, Message::new(format!("after renewal {id}")))
            .await
            .unwrap();
        receive_all(device, &HashSet::from([format!("after renewal {id}")])).await;
    }
    // MQTT renews with a new CONNECT: the status went through Connected again
    let mut connected = 0;
    while let Ok(Some(s)) =
        tokio::time::timeout(Duration::from_millis(100), mqtt_status.recv()).await
    {
        connected += usize::from(s == ConnectionStatus::Connected);
    }
    assert!(
        connected >= 1,
        "the MQTT client reconnected to renew its token"
    );
    for (_, d) in devices {
        d.close().await;
    }
    service.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_fail_fast_without_retries() {
    let h = Hub::start().await;
    let calls = Arc::new(AtomicU32::new(0));
    let counting = {
        let calls = calls.clone();
        RetryPolicy::custom(move |_, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            Some(Duration::from_millis(10))
        })
    };
    let bad_service = h
        .owner()
        .replace("SharedAccessKey=", "SharedAccessKey=AAAA");
    let err = ServiceClient::builder(&bad_service)
        .unwrap()
        .trusted_ca_pem(h.ca())
        .port(h.ports.1)
        .https_port(h.ports.2)
        .retry(counting.clone())
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let service = h.service(fast()).await.unwrap();
    let cs = service
        .registry()
        .create_device("dev1")
        .await
        .unwrap()
        .connection_string("localhost")
        .unwrap();
    let bad_device = cs.replace("SharedAccessKey=", "SharedAccessKey=AAAA");
    for t in [Transport::Mqtt, Transport::Amqp] {
        let err = h
            .device(&bad_device, t, counting.clone(), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{t:?}: {err}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "an unauthorized error is never retried"
    );
    service.close().await;
}

/// A service client closed as soon as it has its message's outcome settles the feedback
/// message that carried it: the next reader of the hub's feedback queue does not get the same
/// record again (before the fix, `close()` could stop the pump between handing the record out
/// and settling its feedback message).
#[tokio::test]
async fn closing_after_an_outcome_settles_the_feedback_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = c2d_hub::HubConfig::ephemeral(dir.path());
    config.limits.feedback_interval = Duration::ZERO;
    let hub = c2d_hub::LocalHub::start(config).await.unwrap();
    let cs = hub.create_device("dev1").await.unwrap();
    let device_cs = cs.connection_string(hub.host_name()).unwrap();
    let device = c2d::DeviceClient::builder(&device_cs)
        .unwrap()
        .transport(c2d::Transport::Amqp)
        .trusted_ca_pem(hub.ca_pem())
        .port(hub.amqp_port())
        .connect()
        .await
        .unwrap();
    let service = || {
        c2d::ServiceClient::builder(&hub.owner_connection_string())
            .unwrap()
            .trusted_ca_pem(hub.ca_pem())
            .port(hub.amqp_port())
            .https_port(hub.https_port())
            .connect()
    };
    for i in 0..20 {
        let s = service().await.unwrap();
        let sent = s
            .send(
                "dev1",
                c2d::Message::new(format!("m{i}")).ack(c2d::Ack::Full),
            )
            .await
            .unwrap();
        device
            .recv()
            .await
            .unwrap()
            .unwrap()
            .complete()
            .await
            .unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(15), sent.outcome());
        assert_eq!(
            outcome.await.unwrap().unwrap().status,
            c2d::FeedbackStatus::Success
        );
        s.close().await;
    }
    let reader = service().await.unwrap();
    let all = reader.feedback().unwrap();
    let again = tokio::time::timeout(Duration::from_secs(2), all.recv()).await;
    assert!(again.is_err(), "a settled record came again: {again:?}");
    reader.close().await;
    device.close().await;
    hub.stop().await;
}
