//! Device C2D over HTTPS and feedback over REST, with a plain HTTPS client.

mod common;

use std::time::Duration;

use c2d::{Ack, FeedbackStatus, Message};
use common::*;

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    fn new(th: &TestHub) -> Http {
        let ca = reqwest::Certificate::from_pem_bundle(th.hub.ca_pem().as_bytes()).unwrap();
        Http {
            client: reqwest::Client::builder()
                .tls_certs_only(ca)
                .build()
                .unwrap(),
            base: format!("https://localhost:{}", th.hub.https_port()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::Response {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.client
            .request(
                method,
                format!("{}{path}{sep}api-version=2016-11-14", self.base),
            )
            .header("Authorization", token)
            .send()
            .await
            .unwrap()
    }
}

fn etag(r: &reqwest::Response) -> String {
    r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn receive_complete_reject_and_abandon_over_https() {
    let th = hub_with(true, |c| c.limits.max_delivery_count = 5).await;
    let dev = th.device("dev1").await;
    let token = device_token(&dev);
    let http = Http::new(&th);
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    for id in ["one", "two", "three"] {
        send(
            &mut sender,
            "dev1",
            &Message::new(id)
                .message_id(id)
                .ack(Ack::Full)
                .property("colour", "blue"),
        )
        .await;
    }
    let path = "/devices/dev1/messages/deviceBound";
    let r = http.call(reqwest::Method::GET, path, &token).await;
    assert_eq!(r.status(), 200);
    let first = etag(&r);
    assert_eq!(header(&r, "iothub-messageid").as_deref(), Some("one"));
    assert_eq!(header(&r, "iothub-app-colour").as_deref(), Some("blue"));
    assert_eq!(header(&r, "iothub-ack").as_deref(), Some("full"));
    assert_eq!(
        header(&r, "iothub-to").as_deref(),
        Some("/devices/dev1/messages/devicebound")
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"one");
    let r = http
        .call(reqwest::Method::DELETE, &format!("{path}/{first}"), &token)
        .await;
    assert_eq!(r.status(), 204, "complete");
    let r = http
        .call(reqwest::Method::DELETE, &format!("{path}/{first}"), &token)
        .await;
    assert_eq!(r.status(), 412, "a second complete finds no lock");
    assert_eq!(
        header(&r, "iothub-errorcode").as_deref(),
        Some("DeviceMessageLockLost")
    );

    let r = http
        .call(
            reqwest::Method::GET,
            "/devices/dev1/messages/devicebound",
            &token,
        )
        .await;
    assert_eq!(header(&r, "iothub-messageid").as_deref(), Some("two"));
    // Java's spelling of reject
    let r = http
        .call(
            reqwest::Method::DELETE,
            &format!("{path}/{}?%3Freject=true", etag(&r)),
            &token,
        )
        .await;
    assert_eq!(r.status(), 204, "reject");

    let r = http.call(reqwest::Method::GET, path, &token).await;
    assert_eq!(header(&r, "iothub-messageid").as_deref(), Some("three"));
    let r = http
        .call(
            reqwest::Method::POST,
            &format!("{path}/{}/abandon", etag(&r)),
            &token,
        )
        .await;
    assert_eq!(r.status(), 204, "abandon");
    let r = http.call(reqwest::Method::GET, path, &token).await;
    assert_eq!(header(&r, "iothub-messageid").as_deref(), Some("three"));
    assert_eq!(header(&r, "iothub-deliverycount").as_deref(), Some("1"));
    // the lock ends after the lock timeout and the message comes back
    th.advance(Duration::from_secs(61));
    let stale = etag(&r);
    let r = http.call(reqwest::Method::GET, path, &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        http.call(reqwest::Method::DELETE, &format!("{path}/{stale}"), &token)
            .await
            .status(),
        412
    );
    let r = http
        .call(
            reqwest::Method::DELETE,
            &format!("{path}/{}", etag(&r)),
            &token,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        http.call(reqwest::Method::GET, path, &token).await.status(),
        204,
        "empty"
    );

    // feedback over REST: one batch with the three outcomes
    let svc = th.policy_token("service");
    let mut statuses = Vec::new();
    while statuses.len() < 3 {
        let r = http
            .call(
                reqwest::Method::GET,
                "/messages/serviceBound/feedback",
                &svc,
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some("application/vnd.microsoft.iothub.feedback.json")
        );
        let lock = etag(&r);
        let records = c2d::service::feedback::decode_batch(&r.bytes().await.unwrap()).unwrap();
        statuses.extend(
            records
                .into_iter()
                .map(|r| (r.original_message_id, r.status)),
        );
        let done = http
            .call(
                reqwest::Method::DELETE,
                &format!("/messages/serviceBound/feedback/{lock}"),
                &svc,
            )
            .await;
        assert_eq!(done.status(), 204);
    }
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        statuses,
        vec![
            ("one".into(), FeedbackStatus::Success),
            ("three".into(), FeedbackStatus::Success),
            ("two".into(), FeedbackStatus::Rejected),
        ]
    );
    assert_eq!(
        http.call(
            reqwest::Method::GET,
            "/messages/serviceBound/feedback",
            &svc
        )
        .await
        .status(),
        204
    );
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn https_auth_is_per_device_and_feedback_needs_service_connect() {
    let th = hub().await;
    let dev1 = th.device("dev1").await;
    th.device("dev2").await;
    let http = Http::new(&th);
    let r = http
        .call(
            reqwest::Method::GET,
            "/devices/dev2/messages/deviceBound",
            &device_token(&dev1),
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = http
        .call(
            reqwest::Method::GET,
            "/messages/serviceBound/feedback",
            &device_token(&dev1),
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = http
        .call(
            reqwest::Method::GET,
            "/messages/serviceBound/feedback",
            &th.policy_token("registryRead"),
        )
        .await;
    assert_eq!(r.status(), 401);
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_feedback_over_rest_comes_back() {
    let th = hub().await;
    let dev = th.device("dev1").await;
    let http = Http::new(&th);
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(
        &mut sender,
        "dev1",
        &Message::new("x").message_id("fb").ack(Ack::Positive),
    )
    .await;
    let token = device_token(&dev);
    let r = http
        .call(
            reqwest::Method::GET,
            "/devices/dev1/messages/deviceBound",
            &token,
        )
        .await;
    http.call(
        reqwest::Method::DELETE,
        &format!("/devices/dev1/messages/deviceBound/{}", etag(&r)),
        &token,
    )
    .await;
    let svc = th.policy_token("service");
    let first = loop {
        let r = http
            .call(
                reqwest::Method::GET,
                "/messages/serviceBound/feedback",
                &svc,
            )
            .await;
        if r.status() == 200 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lock = etag(&first);
    let r = http
        .call(
            reqwest::Method::POST,
            &format!("/messages/serviceBound/feedback/{lock}/abandon"),
            &svc,
        )
        .await;
    assert_eq!(r.status(), 204);
    let again = http
        .call(
            reqwest::Method::GET,
            "/messages/serviceBound/feedback",
            &svc,
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_ne!(etag(&again), lock);
    let records = c2d::service::feedback::decode_batch(&again.bytes().await.unwrap()).unwrap();
    assert_eq!(records[0].original_message_id, "fb");
    service.close().await;
    th.hub.stop().await;
}
