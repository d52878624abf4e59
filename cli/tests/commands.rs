//! The `c2d` command as people use it: a hub in one process, the other commands in others.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn c2d() -> Command {
    Command::new(env!("CARGO_BIN_EXE_c2d"))
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

struct Hub {
    child: Child,
    dir: tempfile::TempDir,
    endpoints: serde_json::Value,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut child = c2d()
        .args([
            "hub",
            "--mqtt-port",
            "0",
            "--amqp-port",
            "0",
            "--https-port",
            "0",
            "--feedback-interval",
            "0s",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = dir.path().join("endpoints.json");
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(endpoints) = serde_json::from_str(&text) {
                return Hub {
                    child,
                    dir,
                    endpoints,
                };
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the hub did not start");
}

fn info(dir: &Path) -> serde_json::Value {
    let out = ok(c2d()
        .args(["hub", "info", "--json", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn demo_runs_the_whole_flow_and_exits_0() {
    let out = ok(c2d().arg("demo").output().unwrap());
    assert!(out.contains("done: 5 messages"), "{out}");
    let feedback: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("service feedback"))
        .collect();
    assert_eq!(feedback.len(), 5, "{out}");
    assert_eq!(
        feedback.iter().filter(|l| l.ends_with("Rejected")).count(),
        1,
        "{out}"
    );
    assert_eq!(
        feedback.iter().filter(|l| l.ends_with("Success")).count(),
        4,
        "{out}"
    );
}

#[test]
fn send_receive_feedback_and_purge_from_the_command_line() {
    let hub = start_hub();
    let info = info(hub.dir.path());
    for key in [
        "service_connection_string",
        "iothubowner_connection_string",
        "ca_file",
        "hostname",
        "mqtt_port",
        "amqp_port",
        "https_port",
    ] {
        assert!(!info[key].is_null(), "hub info misses {key}");
    }
    let owner = info["iothubowner_connection_string"]
        .as_str()
        .unwrap()
        .to_string();
    let ca = info["ca_file"].as_str().unwrap().to_string();
    let https = hub.endpoints["https_port"].as_u64().unwrap().to_string();
    let amqp = hub.endpoints["amqp_port"].as_u64().unwrap().to_string();
    let env = |cmd: &mut Command| {
        cmd.env("IOTHUB_SERVICE_CONNECTION_STRING", &owner)
            .env("IOTHUB_CA_FILE", &ca);
    };
    let mut create = c2d();
    env(&mut create);
    let device_cs = ok(create
        .args([
            "device",
            "create",
            "cli-dev",
            "--endpoint",
            &format!("localhost:{https}"),
        ])
        .output()
        .unwrap());
    let device_cs = device_cs.trim().to_string();
    assert!(device_cs.contains("DeviceId=cli-dev"));

    // a sender that waits for its message's feedback, and a device that completes it
    let mut send = c2d();
    env(&mut send);
    let sender = send
        .args([
            "send",
            "--device",
            "cli-dev",
            "--ack",
            "full",
            "--wait",
            "--json",
            "--message-id",
            "m-1",
            "--property",
            "colour=blue",
        ])
        .args([
            "--amqp-port",
            &amqp,
            "--https-port",
            &https,
            "hello from the command line",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let received = ok(c2d()
        .env("IOTHUB_DEVICE_CONNECTION_STRING", &device_cs)
        .env("IOTHUB_CA_FILE", &ca)
        .args([
            "receive",
            "--transport",
            "amqp",
            "--port",
            &amqp,
            "--count",
            "1",
            "--json",
            "--timeout",
            "20s",
        ])
        .output()
        .unwrap());
    let line: serde_json::Value = serde_json::from_str(received.lines().next().unwrap()).unwrap();
    assert_eq!(line["body"], "hello from the command line");
    assert_eq!(line["messageId"], "m-1");
    assert_eq!(line["properties"]["colour"], "blue");
    assert_eq!(line["action"], "completed");
    let sent = ok(sender.wait_with_output().unwrap());
    assert!(sent.contains(r#""statusCode":"Success""#), "{sent}");

    // purge
    let mut send = c2d();
    env(&mut send);
    ok(send
        .args([
            "send",
            "--device",
            "cli-dev",
            "--amqp-port",
            &amqp,
            "--https-port",
            &https,
            "queued",
        ])
        .output()
        .unwrap());
    let mut purge = c2d();
    env(&mut purge);
    let out = ok(purge
        .args([
            "purge",
            "--device",
            "cli-dev",
            "--amqp-port",
            &amqp,
            "--https-port",
            &https,
        ])
        .output()
        .unwrap());
    assert!(out.contains("purged 1 message"), "{out}");

    // errors are one clear line and a non-zero exit
    let mut send = c2d();
    env(&mut send);
    let out = send
        .args([
            "send",
            "--device",
            "nobody",
            "--amqp-port",
            &amqp,
            "--https-port",
            &https,
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("c2d: device not found"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `c2d soak` for a few seconds, parsed: every accepted message must be delivered.
fn soak(chaos: &str) -> serde_json::Value {
    let out = ok(c2d()
        .args([
            "soak",
            "--chaos",
            chaos,
            "--duration",
            "6s",
            "--devices",
            "2",
        ])
        .args(["--every", "1s", "2s", "--json"])
        .output()
        .unwrap());
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!("soak --chaos {chaos}: {r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert!(r["accepted"].as_u64().unwrap() > 0, "{r}");
    assert!(r["delivered"].as_u64().unwrap() >= r["accepted"].as_u64().unwrap());
    let faults: u64 = r["faults"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(faults > 0, "no fault happened: {r}");
    // a send in flight when its connection dies is retried at once, not after the service
    // client's 30 s timeout
    assert!(r["slowest_send_seconds"].as_f64().unwrap() < 20.0, "{r}");
    r
}

#[test]
fn soak_with_the_hub_killed_loses_nothing() {
    soak("kill");
}

#[test]
fn soak_through_a_faulty_network_loses_nothing() {
    soak("network");
}
