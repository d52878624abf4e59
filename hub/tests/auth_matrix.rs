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
