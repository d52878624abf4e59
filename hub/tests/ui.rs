//! The hub's live page and its metrics over real HTTPS: who may open them, what the event
//! stream says as messages come and go, the page's actions, and the counters.

mod common;

use std::time::Duration;

use c2d::Message;
use common::*;
use serde_json::Value;

fn client(th: &TestHub) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem_bundle(th.hub.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn base(th: &TestHub) -> String {
    format!("https://localhost:{}", th.hub.https_port())
}

fn token(th: &TestHub) -> String {
    th.hub.ui_url().split("token=").nth(1).unwrap().to_string()
}

/// Opens the page's address with its token and returns the session cookie it sets.
async fn sign_in(th: &TestHub) -> String {
    let resp = client(th).get(th.hub.ui_url()).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/ui/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_its_events_and_actions_need_the_token_or_its_cookie() {
    let th = hub().await;
    let http = client(&th);
    let b = base(&th);
    assert!(th.hub.ui_url().starts_with(&format!("{b}/ui/?token=")));
    // the token is in the data directory, for `c2d hub info`, readable by its owner only
    let file = th.dir.path().join(c2d_hub::data_dir::TOKEN_FILE);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token(&th));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    for path in [
        "/ui/",
        "/ui/app.js",
        "/ui/events",
        "/ui/api/devices/d/messages/1/body",
    ] {
        assert_eq!(status(http.get(format!("{b}{path}"))).await, 401, "{path}");
    }
    let purge = format!("{b}/ui/api/devices/d/purge");
    assert_eq!(status(http.post(&purge).header("x-c2d-ui", "1")).await, 401);
    assert_eq!(
        status(http.get(format!("{b}/ui/?token=wrong-{}", token(&th)))).await,
        401
    );
    assert_eq!(
        status(
            http.get(format!("{b}/ui/"))
                .header("cookie", "c2d_ui_1=forged")
        )
        .await,
        401
    );

    let cookie = sign_in(&th).await;
    let page = http
        .get(format!("{b}/ui/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<script src=\"app.js\""));
    assert_eq!(
        status(http.get(format!("{b}/ui/app.js")).header("cookie", &cookie)).await,
        200
    );
    // IoT Hub's own REST paths are as they were
    assert_eq!(status(http.get(format!("{b}/devices/d"))).await, 401);

    // a new start makes a new token, and the old cookie is worth nothing
    let th = th.restart(|_| {}).await;
    let http = client(&th);
    assert_eq!(
        status(
            http.get(format!("{}/ui/", base(&th)))
                .header("cookie", &cookie)
        )
        .await,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_the_token_or_a_registry_read_sas_token() {
    let th = hub().await;
    let http = client(&th);
    let url = format!("{}/metrics", base(&th));
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let bearer = |t: String| {
        http.get(&url)
            .header("authorization", format!("Bearer {t}"))
    };
    assert_eq!(status(bearer("wrong".into())).await, 401);
    let sas = |policy: &str| {
        http.get(&url)
            .header("authorization", th.policy_token(policy))
    };
    assert_eq!(status(sas("service")).await, 401, "no RegistryRead");
    assert_eq!(status(sas("device")).await, 401, "no RegistryRead");
    assert_eq!(status(sas("registryReadWrite")).await, 200);
    assert_eq!(status(sas("iothubowner")).await, 200);
    let ok = bearer(token(&th)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = ok.text().await.unwrap();
    // the refusals above were counted: a wrong bearer token and two SAS tokens without the right
    assert!(
        text.contains("c2d_hub_refused_total{reason=\"ui_token\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("c2d_hub_refused_total{reason=\"forbidden\"} 2"),
        "{text}"
    );
}

/// `/admin/faults` opens for the page's token only: never for a SAS token, not even the
/// owner's or the device's own, nor without a token. With the token it applies, lists and
/// clears faults, and `/metrics` counts them.
#[tokio::test(flavor = "multi_thread")]
async fn admin_faults_take_the_page_token_and_no_sas_token() {
    let th = hub().await;
    let cs = th.device("dev1").await;
    let http = client(&th);
    let url = format!("{}/admin/faults", base(&th));
    let drop_dev1 = serde_json::json!({"fault": "lose-acks", "device": "dev1", "count": 2});
    let none = http.post(&url).json(&drop_dev1).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    for auth in [
        th.policy_token("iothubowner"),
        th.policy_token("service"),
        th.policy_token("device"),
        th.policy_token("registryReadWrite"),
        device_token(&cs),
        "Bearer wrong".to_string(),
    ] {
        for req in [
            http.get(&url),
            http.delete(&url),
            http.post(&url).json(&drop_dev1),
        ] {
            assert_eq!(
                status(req.header("authorization", &auth)).await,
                401,
                "{auth}"
            );
        }
    }
    assert!(th.hub.faults().active().is_empty(), "nothing was applied");
    let bearer = format!("Bearer {}", token(&th));
    let applied = http
        .post(&url)
        .header("authorization", &bearer)
        .json(&drop_dev1)
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), 200);
    let v: Value = applied.json().await.unwrap();
    assert_eq!(v["fault"], "lose-acks");
    // what is wrong with a fault is said
    for (bad, why) in [
        (
            serde_json::json!({"fault": "lose-acks", "device": "nobody", "count": 1}),
            "no device",
        ),
        (serde_json::json!({"fault": "melt"}), "not a fault"),
        (
            serde_json::json!({"fault": "refuse-sends", "error": "busy"}),
            "a count or a duration",
        ),
        (
            serde_json::json!({"fault": "stall-store", "for_ms": u64::MAX}),
            "at most 24 hours",
        ),
    ] {
        let resp = http
            .post(&url)
            .header("authorization", &bearer)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }
    let listed: Value = http
        .get(&url)
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"], serde_json::json!([drop_dev1]));
    // shown on the page while it lasts
    let cookie = sign_in(&th).await;
    let mut events = Events::open(&th, &cookie, "dev1").await;
    let state = events.next().await;
    assert_eq!(state["faults"][0]["fault"], "lose-acks", "{state}");
    let metrics = http
        .get(format!("{}/metrics", base(&th)))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("c2d_hub_faults_total{fault=\"lose-acks\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("c2d_hub_refused_total{reason=\"admin\"} 16"),
        "{metrics}"
    );
    assert_eq!(
        status(http.delete(&url).header("authorization", &bearer)).await,
        204
    );
    assert!(th.hub.faults().active().is_empty());
}

/// The page's event stream.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(th: &TestHub, cookie: &str, device: &str) -> Events {
        let resp = client(th)
            .get(format!("{}/ui/events?device={device}", base(th)))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events {
            resp,
            buf: String::new(),
        }
    }

    /// The next state the stream sends.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    assert!(event.contains("event: state"), "{event}");
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("no event")
                .unwrap()
                .expect("the stream ended");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The first state that satisfies `pred`, within 10 s.
    async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let state = self.next().await;
            if pred(&state) {
                return state;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never saw {what}: last {state}"
            );
        }
    }
}

fn messages(state: &Value) -> Vec<Value> {
    state["device"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn listed<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {state}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_follows_the_queue_and_the_page_acts_on_it() {
    let th = hub().await;
    let cs = th.device("d1").await;
    th.device("idle").await;
    let cookie = sign_in(&th).await;
    let mut events = Events::open(&th, &cookie, "d1").await;
    let first = events.next().await;
    assert_eq!(first["devices_total"], 2);
    assert_eq!(listed(&first, "d1")["depth"], 0);
    assert!(listed(&first, "d1")["connected"].is_null());
    assert!(listed(&first, "d1")["polled"].is_null());
    assert_eq!(first["device"]["id"], "d1");

    // an HTTPS device is not connected, but its last poll shows
    let poll = client(&th)
        .get(format!(
            "{}/devices/d1/messages/devicebound?api-version=2021-04-12",
            base(&th)
        ))
        .header("authorization", device_token(&cs))
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 204);
    let state = events
        .until("the poll", |s| listed(s, "d1")["polled"].is_u64())
        .await;
    assert!(listed(&state, "d1")["connected"].is_null());

    // a message from the service appears, with what the page shows of it
    let html = "<img src=x onerror=alert(1)><b>bold</b>";
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    let sent = Message::new(html)
        .message_id("m-1")
        .property("kind", "test")
        .ack(c2d::Ack::Full);
    send(&mut sender, "d1", &sent).await;
    let state = events.until("m-1 queued", |s| messages(s).len() == 1).await;
    let m = &messages(&state)[0];
    assert_eq!(m["message_id"], "m-1");
    assert_eq!(m["state"], "Enqueued");
    assert_eq!(m["delivery_count"], 0);
    assert_eq!(m["ack"], "full");
    assert_eq!(m["properties"], serde_json::json!([["kind", "test"]]));
    assert_eq!(m["body_size"], html.len());
    assert!(m["expires"].as_u64() > m["enqueued"].as_u64());
    assert_eq!(listed(&state, "d1")["depth"], 1);
    assert_eq!(state["counters"]["accepted"], 1);

    // its body, on request, as plain text that no browser renders
    let http = client(&th);
    let body = http
        .get(format!(
            "{}/ui/api/devices/d1/messages/{}/body",
            base(&th),
            m["seq"]
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(body.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(body.headers()["x-content-type-options"], "nosniff");
    assert_eq!(body.text().await.unwrap(), html);

    // a test message from the page: only with the page's header, then with ack=full
    let test_url = format!("{}/ui/api/devices/d1/messages", base(&th));
    let post = |with_header: bool| {
        let r = http
            .post(&test_url)
            .header("cookie", &cookie)
            .json(&serde_json::json!({ "body": "ping from the page" }));
        if with_header {
            r.header("x-c2d-ui", "1")
        } else {
            r
        }
    };
    assert_eq!(status(post(false)).await, 403);
    let answer: Value = post(true).send().await.unwrap().json().await.unwrap();
    let test_id = answer["message_id"].as_str().unwrap().to_string();
    let state = events
        .until("the test message", |s| messages(s).len() == 2)
        .await;
    assert_eq!(messages(&state)[1]["message_id"], test_id.as_str());
    assert_eq!(messages(&state)[1]["ack"], "full");

    // a device connects and takes both: connected over MQTT, the messages Invisible
    let mut device = common::Device::connect(&th, &cs, true, true).await;
    let p1 = device.next().await;
    let p2 = device.next().await;
    let state = events
        .until("both delivered", |s| {
            messages(s).iter().all(|m| m["state"] == "Invisible")
        })
        .await;
    assert_eq!(listed(&state, "d1")["connected"]["transport"], "mqtt");
    assert!(messages(&state)[0]["lock_expires"].is_u64());
    device.client.ack(&p1).await.unwrap();
    device.client.ack(&p2).await.unwrap();
    let state = events
        .until("both completed", |s| {
            messages(s).is_empty()
                && s["feedback"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["message_id"] == test_id.as_str() && f["status"] == "Success")
        })
        .await;
    assert_eq!(state["counters"]["completed"], 2);
    assert_eq!(listed(&state, "d1")["depth"], 0);
    device.disconnect().await;
    events
        .until("the device gone", |s| {
            listed(s, "d1")["connected"].is_null()
        })
        .await;

    // purge from the page: the queue empties, with Purged feedback
    send(&mut sender, "d1", &sent.clone().message_id("m-2")).await;
    send(&mut sender, "d1", &sent.clone().message_id("m-3")).await;
    events.until("two more", |s| messages(s).len() == 2).await;
    let purge = format!("{}/ui/api/devices/d1/purge", base(&th));
    assert_eq!(
        status(http.post(&purge).header("cookie", &cookie)).await,
        403
    );
    let purged: Value = http
        .post(&purge)
        .header("cookie", &cookie)
        .header("x-c2d-ui", "1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(purged["purged"], 2);
    let state = events.until("purged", |s| messages(s).is_empty()).await;
    assert_eq!(state["counters"]["purged"], 2);
    let statuses: Vec<&str> = state["feedback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "Purged").count(), 2);

    // a test message for a device the hub does not know
    service.close().await;
    let unknown = http
        .post(format!("{}/ui/api/devices/nobody/messages", base(&th)))
        .header("cookie", &cookie)
        .header("x-c2d-ui", "1")
        .json(&serde_json::json!({ "body": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // the metrics say what happened
    let metrics = http
        .get(format!("{}/metrics", base(&th)))
        .header("authorization", format!("Bearer {}", token(&th)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "c2d_hub_devices_registered 2",
        "c2d_hub_messages_total{event=\"accepted\"} 4",
        "c2d_hub_messages_total{event=\"delivered\"} 2",
        "c2d_hub_messages_total{event=\"completed\"} 2",
        "c2d_hub_messages_total{event=\"purged\"} 2",
        "c2d_hub_feedback_records_total{status=\"Success\"} 2",
        "c2d_hub_feedback_records_total{status=\"Purged\"} 2",
        "c2d_hub_queued_messages 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_messages_are_listed_as_dead_letters_with_their_reason() {
    let th = hub_with(true, |_| {}).await;
    th.device("d1").await;
    let cookie = sign_in(&th).await;
    let mut events = Events::open(&th, &cookie, "d1").await;
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(
        &mut sender,
        "d1",
        &Message::new("soon gone")
            .message_id("short")
            .ttl(Duration::from_secs(5)),
    )
    .await;
    events.until("queued", |s| messages(s).len() == 1).await;
    th.advance(Duration::from_secs(6));
    let state = events
        .until("expired", |s| {
            s["dead_letters"].as_array().is_some_and(|d| !d.is_empty())
        })
        .await;
    let letter = &state["dead_letters"][0];
    assert_eq!(letter["message_id"], "short");
    assert_eq!(letter["reason"], "Expired");
    assert_eq!(letter["device"], "d1");
    assert_eq!(state["counters"]["expired"], 1);
    assert_eq!(state["counters"]["dead_lettered"], 1);
    service.close().await;
}
