//! A crash of the hub loses no accepted message: the hub runs in a child process that is
//! killed with SIGKILL while services are sending; after a restart on the same data
//! directory, every message that was answered `accepted` is delivered.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use c2d::Message;
use c2d_hub::{HubConfig, LocalHub};
use common::*;
use fe2o3_amqp::types::messaging::Outcome;

const CHILD_DIR: &str = "C2D_TEST_CHILD_HUB_DIR";

/// Not a test on its own: the body of the child process that runs the hub (ignored, so it
/// runs only when the test below starts it with `--ignored`).
#[test]
#[ignore = "runs as the hub process of kill_9_while_sending_loses_no_accepted_message"]
fn child_hub_process() {
    let dir = std::env::var_os(CHILD_DIR).expect("started by the durability test");
    let dir = std::path::PathBuf::from(dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        init();
        let mut config = HubConfig::ephemeral(&dir);
        config.limits.max_queue_depth = 100_000;
        let hub = LocalHub::start(config).await.unwrap();
        let ports = format!("{} {}", hub.mqtt_port(), hub.amqp_port());
        std::fs::write(dir.join("ports.tmp"), ports).unwrap();
        std::fs::rename(dir.join("ports.tmp"), dir.join("ports")).unwrap();
        std::future::pending::<()>().await;
    });
}

fn spawn_hub(dir: &Path) -> Child {
    let _ = std::fs::remove_file(dir.join("ports"));
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_hub_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .spawn()
        .unwrap()
}

async fn ports(dir: &Path) -> (u16, u16) {
    for _ in 0..300 {
        if let Ok(s) = std::fs::read_to_string(dir.join("ports")) {
            let mut it = s.split(' ').map(|p| p.parse::<u16>().unwrap());
            return (it.next().unwrap(), it.next().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the child hub did not start");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_sending_loses_no_accepted_message() {
    init();
    // The parent opens the data directory first to make the device, then hands it over.
    let setup = hub().await;
    let dev = setup.device("dev1").await;
    let service_token = setup.policy_token("service");
    let TestHub { hub, dir, .. } = setup;
    hub.stop().await;

    let mut child = spawn_hub(dir.path());
    let (_, amqp_port) = ports(dir.path()).await;
    let accepted = Arc::new(Mutex::new(HashSet::<String>::new()));
    let mut senders = Vec::new();
    for worker in 0..4 {
        let accepted = accepted.clone();
        let token = service_token.clone();
        let dir = dir.path().to_path_buf();
        senders.push(tokio::spawn(async move {
            let mut service = match common::service_on_port(&dir, amqp_port, &token).await {
                Ok(s) => s,
                Err(_) => return,
            };
            let Ok(mut sender) = service.sender().await else {
                return;
            };
            for i in 0.. {
                let id = format!("w{worker}-{i}");
                let m = Message::new(id.clone()).message_id(id.as_str());
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    sender.send(amqp_message("dev1", &m)),
                )
                .await
                {
                    Ok(Ok(Outcome::Accepted(_))) => {
                        accepted.lock().unwrap().insert(id);
                    }
                    _ => return, // the hub is gone
                }
            }
        }));
    }
    // let some sends through, then kill the hub in the middle of the stream
    while accepted.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for s in senders {
        let _ = s.await;
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 200);

    let th = TestHub {
        hub: LocalHub::start(HubConfig::ephemeral(dir.path()))
            .await
            .unwrap(),
        dir,
        clock: None,
    };
    let mut device = Device::connect(&th, &dev, true, true).await;
    let mut delivered = HashSet::new();
    let depth = th.hub.queue_depth("dev1");
    assert!(
        depth >= accepted.len(),
        "{depth} queued after the crash, {} accepted",
        accepted.len()
    );
    while delivered.len() < depth {
        let p = device.next().await;
        delivered.insert(String::from_utf8(p.payload.to_vec()).unwrap());
        device.client.ack(&p).await.unwrap();
    }
    let lost: Vec<_> = accepted.difference(&delivered).collect();
    println!(
        "accepted {} before the kill, {} queued after the restart, lost {}",
        accepted.len(),
        depth,
        lost.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    device.disconnect().await;
    th.hub.stop().await;
}
