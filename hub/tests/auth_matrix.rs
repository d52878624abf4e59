//! The authorization matrix: every way a credential can be wrong for what it is used for, on
//! every protocol, refused with that protocol's own error (MQTT CONNACK 5 or SUBACK 0x80, CBS
//! 401, AMQP `amqp:unauthorized-access`, HTTP 401). Prints the number of cases.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use c2d::Message;
use common::*;
use fe2o3_amqp::types::messaging::Body;
use fe2o3_amqp::types::primitives::Value;
use fe2o3_amqp::Receiver;
use rumqttc::{AsyncClient, Event, Packet, QoS, SubscribeReasonCode};

/// A token for `resource` signed with `key`, expiring at `expiry` (Unix seconds).
fn token(resource: &str, key: &str, policy: Option<&str>, expiry: u64) -> String {
    c2d::sas::generate_token(resource, key, policy, expiry).unwrap()
}

fn device_key(device_cs: &str) -> String {
    match c2d::ConnectionString::parse(device_cs).unwrap().credential {
        c2d::Credential::SharedAccessKey { key, .. } => key,
        _ => unreachable!(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An hour ago: past the hub's 5 minutes of allowed clock skew.
fn expired() -> u64 {
    now() - 3600
}

/// A key that is valid base64 but not the device's.
const WRONG_KEY: &str = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgIQ==";

/// Connects over MQTT as dev1 with `password`; the CONNACK error, if refused.
async fn mqtt_connect(th: &TestHub, device_cs: &str, password: String) -> String {
    let mut o = mqtt_options(th, device_cs, true);
    o.set_credentials("localhost/dev1/?api-version=2021-04-12", password);
    let mut d = Device::connect_with(o, device_cs, false).await;
    d.error().await
}

/// What the hub says when `token` (via CBS) attaches a receiver at `address`.
async fn amqp_receive(th: &TestHub, token: String, address: &str) -> String {
    let mut s = match Service::connect_as(th, Auth::Cbs(token)).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    let attached = Receiver::builder()
        .name("auth-matrix")
        .source(address)
        .target("auth-matrix")
        .attach(&mut s.session)
        .await;
    match attached {
        Err(e) => format!("{e:?}"),
        Ok(mut r) => format!("{:?}", r.recv::<Body<Value>>().await),
    }
}

/// What the hub says when `token` (via CBS) sends a C2D message to dev2.
async fn amqp_send(th: &TestHub, token: String) -> String {
    let mut s = match Service::connect_as(th, Auth::Cbs(token)).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    match s.sender().await {
        Err(e) => e,
        Ok(mut sender) => {
            let outcome = sender.send(amqp_message("dev2", &Message::new("x")));
            format!("{:?}", tokio::time::timeout(WAIT, outcome).await)
        }
    }
}

/// The status of a REST call with `token`.
async fn rest(th: &TestHub, method: &str, path: &str, token: &str) -> u16 {
    let ca = reqwest::Certificate::from_pem_bundle(th.hub.ca_pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only(ca)
        .build()
        .unwrap();
    let mut req = client
        .request(
            method.parse().unwrap(),
            format!(
                "https://localhost:{}{path}?api-version=2021-04-12",
                th.hub.https_port()
            ),
        )
        .header("Authorization", token);
    if method == "PUT" {
        req = req
            .header("Content-Type", "application/json")
            .body(r#"{"deviceId":"new"}"#);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_wrong_credential_is_refused_with_the_protocols_own_error() {
    let th = hub().await;
    let a = th.device("dev1").await;
    let b = th.device("dev2").await;
    let host = th.hub.host_name().to_string();
    let a_token = device_token(&a);
    let a_key = device_key(&a);
    let a_expired = token(&format!("{host}/devices/dev1"), &a_key, None, expired());
    let a_wrong_key = token(
        &format!("{host}/devices/dev1"),
        WRONG_KEY,
        None,
        now() + 3600,
    );
    // policies that would be allowed, but for the expiry or the key
    let policy_expired = |policy: &str| {
        let cs = c2d::ConnectionString::parse(&th.hub.policy_connection_string(policy).unwrap())
            .unwrap();
        let c2d::Credential::SharedAccessKey { key, .. } = cs.credential else {
            unreachable!()
        };
        token(&host, &key, Some(policy), expired())
    };
    let service_expired = policy_expired("service");
    let owner_expired = policy_expired("iothubowner");
    let service_wrong_key = token(&host, WRONG_KEY, Some("service"), now() + 3600);
    let owner_wrong_key = token(&host, WRONG_KEY, Some("iothubowner"), now() + 3600);
    let mut cases = 0;
    let mut refused = |what: &str, seen: String, expect: &str| {
        assert!(
            seen.to_lowercase().contains(&expect.to_lowercase()),
            "{what}: expected {expect}, saw {seen}"
        );
        println!("refused  {what:<60} {expect}");
        cases += 1;
    };

    // MQTT
    let mut o = mqtt_options(&th, &b, true);
    o.set_credentials("localhost/dev2/?api-version=2021-04-12", a_token.clone());
    let seen = Device::connect_with(o, &b, false).await.error().await;
    refused("MQTT: A's token as B", seen, "NotAuthorized");
    refused(
        "MQTT: expired device token",
        mqtt_connect(&th, &a, a_expired.clone()).await,
        "NotAuthorized",
    );
    refused(
        "MQTT: token signed with a wrong key",
        mqtt_connect(&th, &a, a_wrong_key.clone()).await,
        "NotAuthorized",
    );
    refused(
        "MQTT: service policy token as a device",
        mqtt_connect(&th, &a, th.policy_token("service")).await,
        "NotAuthorized",
    );
    {
        // A, connected, subscribes to B's topic: SUBACK 0x80
        let (client, mut events) = AsyncClient::new(mqtt_options(&th, &a, true), 16);
        client
            .subscribe("devices/dev2/messages/devicebound/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        let seen = tokio::time::timeout(WAIT, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(s))) => {
                        break format!("{:?}", s.return_codes)
                    }
                    Ok(_) => {}
                    Err(e) => break e.to_string(),
                }
            }
        })
        .await
        .expect("a SUBACK");
        assert!(seen.contains(&format!("{:?}", SubscribeReasonCode::Failure)));
        refused("MQTT: A subscribes to B's topic", seen, "Failure");
        let _ = client.disconnect().await;
    }

    // AMQP
    refused(
        "AMQP: A's token on B's receive link",
        amqp_receive(&th, a_token.clone(), "/devices/dev2/messages/devicebound").await,
        "unauthorized",
    );
    refused(
        "AMQP: expired device token (CBS)",
        amqp_receive(&th, a_expired.clone(), "/devices/dev1/messages/devicebound").await,
        "401",
    );
    refused(
        "AMQP: token signed with a wrong key (CBS)",
        amqp_receive(
            &th,
            a_wrong_key.clone(),
            "/devices/dev1/messages/devicebound",
        )
        .await,
        "401",
    );
    refused(
        "AMQP: device token sending C2D",
        amqp_send(&th, a_token.clone()).await,
        "unauthorized",
    );
    refused(
        "AMQP: device token on the feedback link",
        amqp_receive(&th, a_token.clone(), "/messages/serviceBound/feedback").await,
        "unauthorized",
    );
    refused(
        "AMQP: policy without ServiceConnect sending (registryRead)",
        amqp_send(&th, th.policy_token("registryRead")).await,
        "unauthorized",
    );
    refused(
        "AMQP: policy without ServiceConnect reading feedback",
        amqp_receive(
            &th,
            th.policy_token("registryReadWrite"),
            "/messages/serviceBound/feedback",
        )
        .await,
        "unauthorized",
    );
    refused(
        "AMQP: expired service token (CBS)",
        amqp_send(&th, service_expired.clone()).await,
        "401",
    );
    refused(
        "AMQP: service token signed with a wrong key (CBS)",
        amqp_send(&th, service_wrong_key.clone()).await,
        "401",
    );

    // REST
    let code = |c: u16| c.to_string();
    refused(
        "REST: A's token on B's deviceBound",
        code(rest(&th, "GET", "/devices/dev2/messages/deviceBound", &a_token).await),
        "401",
    );
    refused(
        "REST: expired device token on its own deviceBound",
        code(rest(&th, "GET", "/devices/dev1/messages/deviceBound", &a_expired).await),
        "401",
    );
    refused(
        "REST: device token signed with a wrong key",
        code(
            rest(
                &th,
                "GET",
                "/devices/dev1/messages/deviceBound",
                &a_wrong_key,
            )
            .await,
        ),
        "401",
    );
    refused(
        "REST: device token on the registry (GET /devices/dev1)",
        code(rest(&th, "GET", "/devices/dev1", &a_token).await),
        "401",
    );
    refused(
        "REST: device token on purge",
        code(rest(&th, "DELETE", "/devices/dev1/commands", &a_token).await),
        "401",
    );
    refused(
        "REST: device token on the feedback queue",
        code(rest(&th, "GET", "/messages/serviceBound/feedback", &a_token).await),
        "401",
    );
    refused(
        "REST: registry write with a read-only policy",
        code(rest(&th, "PUT", "/devices/new", &th.policy_token("registryRead")).await),
        "401",
    );
    refused(
        "REST: registry delete with a read-only policy",
        code(
            rest(
                &th,
                "DELETE",
                "/devices/dev2",
                &th.policy_token("registryRead"),
            )
            .await,
        ),
        "401",
    );
    refused(
        "REST: registry write with the service policy",
        code(rest(&th, "PUT", "/devices/new", &th.policy_token("service")).await),
        "401",
    );
    refused(
        "REST: purge without ServiceConnect (registryReadWrite)",
        code(
            rest(
                &th,
                "DELETE",
                "/devices/dev2/commands",
                &th.policy_token("registryReadWrite"),
            )
            .await,
        ),
        "401",
    );
    refused(
        "REST: expired iothubowner token on the registry",
        code(rest(&th, "GET", "/devices/dev1", &owner_expired).await),
        "401",
    );
    refused(
        "REST: iothubowner token signed with a wrong key",
        code(rest(&th, "GET", "/devices/dev1", &owner_wrong_key).await),
        "401",
    );

    // the same calls with the right credentials pass, so the refusals above are about them
    assert_eq!(
        rest(&th, "GET", "/devices/dev1", &th.policy_token("iothubowner")).await,
        200
    );
    assert_eq!(
        rest(&th, "GET", "/devices/dev1/messages/deviceBound", &a_token).await,
        204
    );
    let accepted = amqp_send(&th, th.policy_token("service")).await;
    assert!(accepted.contains("Accepted"), "{accepted}");
    let mut d = Device::connect(&th, &a, true, true).await;
    d.nothing_for(std::time::Duration::from_millis(100)).await;
    d.disconnect().await;
    let mut b_device = Device::connect(&th, &b, true, true).await;
    assert_eq!(&b_device.next().await.payload[..], b"x");
    b_device.disconnect().await;

    // nothing refused changed anything: both devices are still there, and B got only the one
    // message the service policy sent
    assert!(th.hub.device_connection_string("dev2").is_some());
    println!("auth matrix: {cases} cases, each refused with the protocol's own error");
    th.hub.stop().await;
}

/// A device client over `transport` with `cert` (or a SAS connection string without one),
/// not retrying: what `connect` says.
async fn x509_connect(
    th: &TestHub,
    cs: &str,
    cert: Option<&c2d_hub::x509::DeviceCertificate>,
    transport: c2d::Transport,
) -> c2d::Result<c2d::DeviceClient> {
    let port = match transport {
        c2d::Transport::Mqtt => th.hub.mqtt_port(),
        c2d::Transport::Amqp => th.hub.amqp_port(),
        _ => th.hub.https_port(),
    };
    let mut b = c2d::DeviceClient::builder(cs)?
        .transport(transport)
        .trusted_ca_pem(th.hub.ca_pem())
        .port(port)
        .retry(c2d::RetryPolicy::None)
        .poll_interval(std::time::Duration::from_millis(50));
    if let Some(c) = cert {
        b = b.client_certificate(c.cert_pem.clone(), c.key_pem.clone());
    }
    b.connect().await
}

fn x509_device(id: &str, kind: &str, thumbprints: [Option<&str>; 2]) -> c2d::Device {
    let mut d = c2d::Device::new_sas(id);
    d.authentication.kind = kind.into();
    d.authentication.x509_thumbprint.primary_thumbprint = thumbprints[0].map(str::to_string);
    d.authentication.x509_thumbprint.secondary_thumbprint = thumbprints[1].map(str::to_string);
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn x509_identities_are_checked_on_every_transport() {
    use c2d_hub::x509::{device_certificate, SigningCa};
    use common::v1_certificate::v1_certificate;
    use std::time::Duration;
    let day = Duration::from_secs(86_400);
    let valid = SystemTime::now() - day..SystemTime::now() + day;
    // a CA registered with the hub (certificateAuthority devices chain to it) and one that is not
    let ca = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        (p.self_signed(&key).unwrap().pem(), key.serialize_pem())
    };
    let (trusted_pem, trusted_key) = ca("fleet CA");
    let (other_pem, other_key) = ca("someone else's CA");
    let trusted = SigningCa {
        cert_pem: &trusted_pem,
        key_pem: &trusted_key,
    };
    let other = SigningCa {
        cert_pem: &other_pem,
        key_pem: &other_key,
    };
    // version 1 certificates (no extensions), as `openssl x509 -req` makes them: a device's
    // own, one signed by the registered CA, and a registered version 1 CA with its device's
    let trusted_key_pair = rcgen::KeyPair::from_pem(&trusted_key).unwrap();
    let (v1_self, _) = v1_certificate("v1self", valid.clone(), None);
    let (v1_ca_dev, _) = v1_certificate(
        "v1ca",
        valid.clone(),
        Some((&trusted_pem, &trusted_key_pair)),
    );
    let (v1_root, v1_root_key) = v1_certificate("legacy CA", valid.clone(), None);
    let (v1_root_dev, _) = v1_certificate(
        "v1root",
        valid.clone(),
        Some((&v1_root.cert_pem, &v1_root_key)),
    );
    let other_key_pair = rcgen::KeyPair::from_pem(&other_key).unwrap();
    let (v1_untrusted, _) =
        v1_certificate("v1ca", valid.clone(), Some((&other_pem, &other_key_pair)));
    let pems = vec![
        trusted_pem.clone().into_bytes(),
        v1_root.cert_pem.clone().into_bytes(),
    ];
    let th = hub_with(false, move |c| c.x509_ca_pems = pems).await;
    let host = th.hub.host_name().to_string();
    let cs = |id: &str| format!("HostName={host};DeviceId={id};x509=true");

    let self1 = device_certificate("self1", valid.clone(), None).unwrap();
    let self2 = device_certificate("self2", valid.clone(), None).unwrap();
    let by_sha256 = device_certificate("sha256", valid.clone(), None).unwrap();
    let stranger = device_certificate("self1", valid.clone(), None).unwrap();
    let past = SystemTime::now() - 3 * day..SystemTime::now() - day;
    let expired = device_certificate("old", past, None).unwrap();
    let ca_dev = device_certificate("ca1", valid.clone(), Some(trusted)).unwrap();
    let ca_wrong_cn = device_certificate("ca2", valid.clone(), Some(trusted)).unwrap();
    let ca_untrusted = device_certificate("ca1", valid.clone(), Some(other)).unwrap();
    for d in [
        x509_device("self1", "selfSigned", [Some(&self1.sha1_thumbprint), None]),
        x509_device("self2", "selfSigned", [Some(&self2.sha1_thumbprint), None]),
        // the SHA-256 thumbprint, as the secondary, in lower case with colons
        x509_device(
            "sha256",
            "selfSigned",
            [
                Some(&self2.sha1_thumbprint),
                Some(
                    &by_sha256
                        .sha256_thumbprint
                        .as_bytes()
                        .chunks(2)
                        .map(|c| std::str::from_utf8(c).unwrap().to_ascii_lowercase())
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
            ],
        ),
        x509_device("old", "selfSigned", [Some(&expired.sha1_thumbprint), None]),
        x509_device("ca1", "certificateAuthority", [None, None]),
        x509_device(
            "v1self",
            "selfSigned",
            [Some(&v1_self.sha1_thumbprint), None],
        ),
        x509_device("v1ca", "certificateAuthority", [None, None]),
        x509_device("v1root", "certificateAuthority", [None, None]),
    ] {
        th.hub.create_device_with(d).await.unwrap();
    }
    let sas = th.device("sas1").await;

    let mut cases = 0;
    for transport in c2d::Transport::ALL {
        let refused: [(&str, String, Option<&c2d_hub::x509::DeviceCertificate>); 9] = [
            (
                "a certificate whose thumbprint is not registered",
                cs("self1"),
                Some(&stranger),
            ),
            ("another device's certificate", cs("self2"), Some(&self1)),
            ("an expired certificate", cs("old"), Some(&expired)),
            (
                "a certificate from a CA the hub does not trust",
                cs("ca1"),
                Some(&ca_untrusted),
            ),
            (
                "a trusted CA's certificate for another device (CN)",
                cs("ca1"),
                Some(&ca_wrong_cn),
            ),
            ("a certificate for a SAS device", cs("sas1"), Some(&self1)),
            (
                "a certificate for an unknown device",
                cs("ghost"),
                Some(&self1),
            ),
            (
                "a version 1 certificate from a CA the hub does not trust",
                cs("v1ca"),
                Some(&v1_untrusted),
            ),
            (
                "another device's version 1 certificate",
                cs("self1"),
                Some(&v1_self),
            ),
        ];
        for (what, cs, cert) in refused {
            let err = x509_connect(&th, &cs, cert, transport).await.unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    c2d::ErrorKind::Unauthorized | c2d::ErrorKind::DeviceNotFound
                ),
                "{transport}: {what}: {err}"
            );
            cases += 1;
        }
        // the right certificates reach their devices: SHA-1 and SHA-256 thumbprints, a CA
        for (id, cert) in [
            ("self1", &self1),
            ("sha256", &by_sha256),
            ("ca1", &ca_dev),
            ("v1self", &v1_self),
            ("v1ca", &v1_ca_dev),
            ("v1root", &v1_root_dev),
        ] {
            let device = x509_connect(&th, &cs(id), Some(cert), transport)
                .await
                .unwrap_or_else(|e| panic!("{transport}: {id}: {e}"));
            let svc = c2d::ServiceClient::builder(&th.hub.service_connection_string())
                .unwrap()
                .trusted_ca_pem(th.hub.ca_pem())
                .port(th.hub.amqp_port())
                .https_port(th.hub.https_port())
                .connect()
                .await
                .unwrap();
            svc.send(id, Message::new(format!("to {id}")))
                .await
                .unwrap();
            let m = tokio::time::timeout(WAIT, device.recv())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(m.body(), format!("to {id}").as_bytes());
            m.complete().await.unwrap();
            device.close().await;
            svc.close().await;
        }
    }
    // a SAS device's token still works when a certificate is offered beside it
    let d = x509_connect(&th, &sas, Some(&self1), c2d::Transport::Mqtt)
        .await
        .unwrap();
    d.close().await;
    println!("auth matrix (X.509): {cases} cases, each refused with the protocol's own error");
    th.hub.stop().await;
}
