//! What the scenario tests in `tests/` share: a hub of their own on ephemeral ports with a
//! manual clock, and clients pointed at it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use c2d::{DeviceClient, RetryPolicy, ServiceClient, Transport};
use c2d_hub::{HubConfig, LocalHub, ManualClock};

/// How long a test waits for what should come at once.
pub const WAIT: Duration = Duration::from_secs(15);

/// A hub started by the test, on a manual clock, its data in a temporary directory.
pub struct TestHub {
    /// The hub.
    pub hub: LocalHub,
    /// Its clock: TTLs and locks end when the test advances it.
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl TestHub {
    /// Starts a hub with IoT Hub's rules, changed by `configure`.
    pub async fn start(configure: impl FnOnce(&mut HubConfig)) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        let mut config = HubConfig::ephemeral(dir.path());
        config.clock = clock.clone();
        configure(&mut config);
        TestHub {
            hub: LocalHub::start(config).await.unwrap(),
            clock,
            _dir: dir,
        }
    }

    /// A service client with the `iothubowner` policy.
    pub async fn service(&self) -> ServiceClient {
        ServiceClient::builder(&self.hub.owner_connection_string())
            .unwrap()
            .trusted_ca_pem(self.hub.ca_pem())
            .port(self.hub.amqp_port())
            .https_port(self.hub.https_port())
            .connect()
            .await
            .unwrap()
    }

    /// The hub's port for `t`.
    pub fn port(&self, t: Transport) -> u16 {
        match t {
            Transport::Mqtt => self.hub.mqtt_port(),
            Transport::Amqp => self.hub.amqp_port(),
            Transport::MqttWs | Transport::AmqpWs | Transport::Https => self.hub.https_port(),
        }
    }

    /// A device client over `t` (retrying every 100 ms; HTTPS polling every 50 ms).
    pub async fn device(&self, cs: &str, t: Transport) -> c2d::Result<DeviceClient> {
        DeviceClient::builder(cs)?
            .transport(t)
            .trusted_ca_pem(self.hub.ca_pem())
            .port(self.port(t))
            .retry(RetryPolicy::fixed(Duration::from_millis(100)))
            .poll_interval(Duration::from_millis(50))
            .connect()
            .await
    }
}

/// The device's next message, within [`WAIT`].
pub async fn recv(d: &DeviceClient) -> c2d::ReceivedMessage {
    tokio::time::timeout(WAIT, d.recv())
        .await
        .expect("a message within 15 s")
        .unwrap()
        .expect("open")
}
