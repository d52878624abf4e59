//! The registry REST API with c2d's REST client, as IoT Hub answers it.

mod common;

use c2d::{Device, ErrorKind, Message};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn create_get_list_delete_with_iot_hub_statuses() {
    let th = hub().await;
    let owner = th.registry("iothubowner");
    let d = owner.create_device("dev-1").await.unwrap();
    assert_eq!(d.device_id, "dev-1");
    assert_eq!(d.status, "enabled");
    assert_eq!(d.generation_id.len(), 18);
    assert!(
        d.authentication.symmetric_key.primary_key.is_some(),
        "keys are generated when empty"
    );
    let cs = d.connection_string("localhost").unwrap();
    assert!(c2d::ConnectionString::parse_device(&cs).is_ok());

    let again = owner.create_device("dev-1").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidArgument);
    assert!(again.message().contains("DeviceAlreadyExists"), "{again}");
    assert_eq!(owner.get_device("dev-1").await.unwrap().etag, d.etag);
    assert_eq!(owner.list_devices(10).await.unwrap().len(), 1);
    assert_eq!(
        owner.get_device("nope").await.unwrap_err().kind(),
        ErrorKind::DeviceNotFound
    );

    // keys given by the caller are kept
    let mut with_keys = Device::new_sas("dev-2");
    let key = c2d_hub::registry::generate_key();
    with_keys.authentication.symmetric_key.primary_key = Some(key.clone());
    let d2 = owner.create_device_with(&with_keys).await.unwrap();
    assert_eq!(d2.authentication.symmetric_key.primary_key, Some(key));

    // deleting a device drops its queue
    let mut service = Service::connect(&th).await;
    let mut sender = service.sender().await.unwrap();
    send(&mut sender, "dev-1", &Message::new("x")).await;
    assert_eq!(
        owner
            .get_device("dev-1")
            .await
            .unwrap()
            .cloud_to_device_message_count,
        1
    );
    owner.delete_device("dev-1").await.unwrap();
    assert_eq!(th.hub.queue_depth("dev-1"), 0);
    assert_eq!(
        owner.delete_device("dev-1").await.unwrap_err().kind(),
        ErrorKind::DeviceNotFound
    );
    service.close().await;
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_reach_only_what_they_grant() {
    let th = hub().await;
    th.device("dev1").await;
    let read = th.registry("registryRead");
    assert!(read.get_device("dev1").await.is_ok());
    assert_eq!(
        read.create_device("x").await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        read.delete_device("dev1").await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    let service = th.registry("service");
    assert_eq!(
        service.get_device("dev1").await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        service.create_device("x").await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    let rw = th.registry("registryReadWrite");
    assert!(rw.create_device("x").await.is_ok());
    assert_eq!(
        rw.purge_queue("x").await.unwrap_err().kind(),
        ErrorKind::Unauthorized,
        "purge needs ServiceConnect"
    );
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_carry_iot_hub_error_codes() {
    let th = hub().await;
    let url = format!(
        "https://localhost:{}/devices/nope?api-version=2021-04-12",
        th.hub.https_port()
    );
    let http = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(th.hub.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = http
        .get(&url)
        .header("Authorization", th.policy_token("iothubowner"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["iothub-errorcode"], "DeviceNotFound");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["Message"]
        .as_str()
        .unwrap()
        .starts_with("ErrorCode:DeviceNotFound;"));
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // Node and Python send a quoted "*" on delete; no such device is a 404
    let resp = http
        .delete(&url)
        .header("Authorization", th.policy_token("iothubowner"))
        .header("If-Match", "\"*\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    th.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_says_whether_a_device_is_connected() {
    let th = hub().await;
    let cs = th.device("d1").await;
    let owner = th.registry("iothubowner");
    let d = owner.get_device("d1").await.unwrap();
    assert_eq!(d.connection_state, "Disconnected");
    let device = common::Device::connect(&th, &cs, true, true).await;
    let state = |want: &'static str| {
        let owner = &owner;
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let d = owner.get_device("d1").await.unwrap();
                if d.connection_state == want {
                    return d;
                }
                assert!(tokio::time::Instant::now() < deadline, "never {want}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let d = state("Connected").await;
    assert_ne!(
        d.connection_state_updated_time.as_deref(),
        Some("0001-01-01T00:00:00Z")
    );
    assert_eq!(
        owner.list_devices(10).await.unwrap()[0].connection_state,
        "Connected"
    );
    device.disconnect().await;
    state("Disconnected").await;
}
