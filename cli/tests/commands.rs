//! The `c2d` command as people use it: a hub in one process, the other commands in others.

use std::path::{Path, PathBuf};
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
    /// A folder holding the hub's data directory, `.c2d-hub`.
    root: tempfile::TempDir,
    dir: PathBuf,
    endpoints: serde_json::Value,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Hub {
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub on free ports, its data directory `.c2d-hub` in a folder of its own.
fn start_hub() -> Hub {
    start_hub_with(&[])
}

/// Like [`start_hub`], with more options of `c2d hub`.
fn start_hub_with(options: &[&str]) -> Hub {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(".c2d-hub");
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
        .arg(&dir)
        .args(options)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = dir.join("endpoints.json");
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(endpoints) = serde_json::from_str(&text) {
                return Hub {
                    child,
                    root,
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
    let info = info(&hub.dir);
    for key in [
        "service_connection_string",
        "iothubowner_connection_string",
        "ca_file",
        "hostname",
        "mqtt_port",
        "amqp_port",
        "https_port",
        "ui_url",
    ] {
        assert!(!info[key].is_null(), "hub info misses {key}");
    }
    // the live page's address, with the token of the hub that runs there
    let token = std::fs::read_to_string(hub.dir.join("ui-token")).unwrap();
    assert_eq!(
        info["ui_url"],
        format!(
            "https://localhost:{}/ui/?token={token}",
            hub.endpoints["https_port"]
        )
    );
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
    soak_with(chaos, &["--devices", "2", "--every", "1s", "2s"])
}

fn soak_with(chaos: &str, args: &[&str]) -> serde_json::Value {
    let out = ok(c2d()
        .args(["soak", "--chaos", chaos, "--duration", "6s"])
        .args(args)
        .arg("--json")
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

/// The hub's own faults, devices on every transport: nothing lost; with duplicate suppression
/// no message is handed to the application twice, though duplicates came.
#[test]
fn soak_with_the_hubs_faults_loses_nothing_and_suppression_hands_each_message_over_once() {
    let r = soak_with(
        "faults",
        &[
            "--devices",
            "5",
            "--every",
            "200ms",
            "600ms",
            "--suppress-duplicates",
        ],
    );
    assert_eq!(r["duplicated"], 0, "{r}");
    assert_eq!(r["suppress_duplicates"], true);
}

/// `c2d hub fault …` against the running local hub, and a `c2d receive
/// --suppress-duplicates` that does not print a message twice when its ack was lost.
#[test]
fn hub_faults_from_the_command_line() {
    let hub = start_hub_with(&["--lock-timeout", "5s"]);
    let cmd = || zero_config(hub.root.path(), None);
    let mut create = cmd();
    create.args(["device", "create", "dev1"]);
    ok(bounded(create));
    let fault = |args: &[&str]| {
        let mut c = cmd();
        c.args(["hub", "fault"]).args(args);
        bounded(c)
    };
    let listed = ok(fault(&["list"]));
    assert!(listed.contains("no fault in force"), "{listed}");
    ok(fault(&["lose-acks", "--device", "dev1", "--count", "1"]));
    ok(fault(&["refuse-sends", "--error", "busy", "--for", "30s"]));
    let listed = ok(fault(&["list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v["faults"][0]["fault"], "lose-acks", "{v}");
    assert_eq!(v["faults"][1]["error"], "busy", "{v}");
    ok(fault(&["clear"]));
    // refused twice as busy (503001), retried by the service client, then through
    ok(fault(&["refuse-sends", "--error", "busy", "--count", "2"]));
    let mut send = cmd();
    send.args(["send", "--device", "dev1", "retried"]);
    ok(bounded(send));
    let mut purge = cmd();
    purge.args(["purge", "--device", "dev1"]);
    ok(bounded(purge));
    ok(fault(&["clear"]));
    ok(fault(&["lose-acks", "--device", "dev1"]));
    let unknown = fault(&["lose-acks", "--device", "nobody"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no device 'nobody'"),
        "{}",
        stderr(&unknown)
    );
    for (id, body) in [("m1", "first"), ("m2", "second")] {
        let mut send = cmd();
        send.args(["send", "--device", "dev1", "--message-id", id, body]);
        ok(bounded(send));
    }
    // the first completion is lost; its lock ends in 5 s and it comes again, settled without
    // being printed
    let mut receive = cmd();
    receive.args([
        "receive",
        "--device",
        "dev1",
        "--suppress-duplicates",
        "--timeout",
        "8s",
    ]);
    let out = bounded(receive);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{printed}{}", stderr(&out));
    assert_eq!(printed.matches("first").count(), 1, "{printed}");
    assert_eq!(printed.matches("second").count(), 1, "{printed}");
    assert!(
        stderr(&out).contains("1 duplicate(s) suppressed"),
        "{}",
        stderr(&out)
    );
    let dropped = ok(fault(&["drop", "--transport", "amqp"]));
    assert!(dropped.contains("dropped 0 connection(s)"), "{dropped}");
    let expired = ok(fault(&["expire-locks"]));
    assert!(expired.contains("ended 0 lock(s)"), "{expired}");
    // a stalled disk holds a send only until its device completes the message: the receiver
    // below takes it, and the send is answered long before the stall ends
    ok(fault(&["stall-store", "--for", "120s"]));
    let mut receive = cmd();
    receive.args([
        "receive",
        "--device",
        "dev1",
        "--count",
        "1",
        "--timeout",
        "25s",
    ]);
    let receiving = std::thread::spawn(move || bounded(receive));
    let mut send = cmd();
    send.args(["send", "--device", "dev1", "completed before its commit"]);
    ok(bounded(send));
    let out = receiving.join().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{printed}{}", stderr(&out));
    assert!(printed.contains("completed before its commit"), "{printed}");
    ok(fault(&["clear"]));
}

/// A `c2d` command that knows of no hub but the local one: no connection string or CA in its
/// environment, run from `cwd`, with `C2D_HUB_DIR` set only when `hub_dir` is given.
fn zero_config(cwd: &Path, hub_dir: Option<&Path>) -> Command {
    let mut cmd = c2d();
    cmd.current_dir(cwd)
        .env_remove("C2D_HUB_DIR")
        .env_remove("IOTHUB_SERVICE_CONNECTION_STRING")
        .env_remove("IOTHUB_DEVICE_CONNECTION_STRING")
        .env_remove("IOTHUB_CA_FILE")
        .env_remove("IOTHUB_ENDPOINT");
    if let Some(dir) = hub_dir {
        cmd.env("C2D_HUB_DIR", dir);
    }
    cmd
}

/// Runs `cmd` to its end, failing the test if it is still running after 30 s (a command
/// that cannot reach its hub must say so, not wait for it).
fn bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after 30 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The client commands of one zero-config session, each made by `cmd`:
/// register a device, send to it and wait for the outcome, receive as it by id, read
/// feedback, purge.
fn zero_config_session(cmd: &dyn Fn() -> Command, device: &str) {
    let mut create = cmd();
    let out = bounded({
        create.args(["device", "create", device]);
        create
    });
    let device_cs = ok(out.clone());
    assert!(
        device_cs.contains(&format!("DeviceId={device};")),
        "{device_cs}"
    );
    assert!(
        stderr(&out).starts_with("c2d: using the local hub in "),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    // send and wait for the outcome while the device, found by its id alone, completes it
    let sender = cmd()
        .args([
            "send", "--device", device, "--ack", "full", "--wait", "--json",
        ])
        .args(["--message-id", "zc-1", "--property", "k=v", "zero config"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut receive = cmd();
    receive.args(["receive", "--device", device, "--count", "1", "--json"]);
    receive.args(["--timeout", "20s"]);
    let received = ok(bounded(receive));
    let line: serde_json::Value = serde_json::from_str(received.lines().next().unwrap()).unwrap();
    assert_eq!(line["body"], "zero config");
    assert_eq!(line["messageId"], "zc-1");
    assert_eq!(line["properties"]["k"], "v");
    assert_eq!(line["action"], "completed");
    let sent = ok(sender.wait_with_output().unwrap());
    assert!(sent.contains(r#""statusCode":"Success""#), "{sent}");

    // a rejection over AMQP, read back by `c2d feedback`
    let mut send = cmd();
    send.args(["send", "--device", device, "--ack", "negative"]);
    send.args(["--message-id", "zc-2", "to be rejected"]);
    ok(bounded(send));
    let mut receive = cmd();
    receive.args(["receive", "--device", device, "--transport", "amqp"]);
    receive.args(["--reject", "--count", "1", "--json", "--timeout", "20s"]);
    let rejected = ok(bounded(receive));
    assert!(rejected.contains(r#""action":"rejected""#), "{rejected}");
    let mut feedback = cmd();
    feedback.args(["feedback", "--device", device, "--count", "1", "--json"]);
    let record = ok(bounded(feedback));
    let record: serde_json::Value = serde_json::from_str(record.trim()).unwrap();
    assert_eq!(record["originalMessageId"], "zc-2");
    assert_eq!(record["statusCode"], "Rejected");

    let mut send = cmd();
    send.args(["send", "--device", device, "queued"]);
    ok(bounded(send));
    let mut purge = cmd();
    purge.args(["purge", "--device", device]);
    let out = ok(bounded(purge));
    assert!(out.contains("purged 1 message"), "{out}");
}

#[test]
fn client_commands_find_the_local_hub_by_themselves() {
    let mut hub = start_hub();
    let elsewhere = tempfile::tempdir().unwrap();
    // named by C2D_HUB_DIR, from any folder
    zero_config_session(&|| zero_config(elsewhere.path(), Some(&hub.dir)), "zc-env");
    // ./.c2d-hub, from the folder that holds it
    zero_config_session(&|| zero_config(hub.root.path(), None), "zc-cwd");

    // no hub anywhere: the error names both ways out
    let mut send = zero_config(elsewhere.path(), None);
    send.args(["send", "--device", "zc-env", "x"]);
    let out = bounded(send);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no hub to connect to"), "{err}");
    assert!(err.contains("--connection-string"), "{err}");
    assert!(err.contains("IOTHUB_SERVICE_CONNECTION_STRING"), "{err}");
    assert!(err.contains("c2d hub"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let mut receive = zero_config(elsewhere.path(), None);
    receive.args(["receive", "--count", "1"]);
    let out = bounded(receive);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--device"), "{}", stderr(&out));

    // a hub that has stopped, its endpoints.json left behind: a clear error, not a wait
    hub.stop();
    assert!(hub.dir.join("endpoints.json").exists());
    for args in [
        &["send", "--device", "zc-env", "x"][..],
        &["device", "list"],
        &["receive", "--device", "zc-env"],
    ] {
        let mut cmd = zero_config(elsewhere.path(), Some(&hub.dir));
        cmd.args(args);
        let out = bounded(cmd);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("no hub is listening at localhost:"),
            "{args:?}: {err}"
        );
        assert!(err.contains("is not running"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn version_is_printed() {
    let out = ok(c2d().arg("--version").output().unwrap());
    assert_eq!(out.trim(), format!("c2d {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn x509_devices_from_the_command_line() {
    let hub = start_hub();
    let certs = hub.root.path().join("certs");
    let in_hub = |args: &[&str]| {
        let mut cmd = c2d();
        cmd.args(args).env("C2D_HUB_DIR", &hub.dir);
        cmd
    };
    let receive = |device: &str, cert: &Path, key: &Path, transport: &str| {
        ok(
            in_hub(&["receive", "--json", "--count", "1", "--timeout", "20s"])
                .args([
                    "--device",
                    device,
                    "--transport",
                    transport,
                    "--poll-interval",
                    "100ms",
                ])
                .arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .output()
                .unwrap(),
        )
    };
    // --x509-self-signed: the certificate is made and its thumbprint registered
    let out = ok(
        in_hub(&["device", "create", "xs", "--json", "--x509-self-signed"])
            .arg(&certs)
            .output()
            .unwrap(),
    );
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(created["connectionString"]
        .as_str()
        .unwrap()
        .ends_with(";DeviceId=xs;x509=true"));
    let (xs_cert, xs_key) = (certs.join("xs.cert.pem"), certs.join("xs.key.pem"));
    ok(in_hub(&["send", "--device", "xs", "one"]).output().unwrap());
    assert!(receive("xs", &xs_cert, &xs_key, "https").contains(r#""body":"one""#));

    // `device certificate`, then `create --x509-thumbprint` with its SHA-256 thumbprint
    let out = ok(in_hub(&["device", "certificate", "xt", "--json", "--out"])
        .arg(&certs)
        .output()
        .unwrap());
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sha256 = made["sha256Thumbprint"].as_str().unwrap();
    ok(
        in_hub(&["device", "create", "xt", "--x509-thumbprint", sha256])
            .output()
            .unwrap(),
    );
    let (xt_cert, xt_key) = (certs.join("xt.cert.pem"), certs.join("xt.key.pem"));
    ok(in_hub(&["send", "--device", "xt", "two"]).output().unwrap());
    assert!(receive("xt", &xt_cert, &xt_key, "amqp").contains(r#""body":"two""#));

    // a certificateAuthority device, its certificate signed by the hub's development CA
    ok(in_hub(&["device", "create", "xc", "--x509-ca"])
        .output()
        .unwrap());
    ok(in_hub(&["device", "certificate", "xc", "--out"])
        .arg(&certs)
        .arg("--ca-cert")
        .arg(hub.dir.join("ca.pem"))
        .arg("--ca-key")
        .arg(hub.dir.join("ca.key"))
        .output()
        .unwrap());
    ok(in_hub(&["send", "--device", "xc", "three"])
        .output()
        .unwrap());
    let (xc_cert, xc_key) = (certs.join("xc.cert.pem"), certs.join("xc.key.pem"));
    assert!(receive("xc", &xc_cert, &xc_key, "mqtt").contains(r#""body":"three""#));

    // another device's certificate is refused, with the reason on stderr
    let out = in_hub(&[
        "receive",
        "--device",
        "xt",
        "--count",
        "1",
        "--timeout",
        "5s",
    ])
    .arg("--cert-file")
    .arg(&xs_cert)
    .arg("--key-file")
    .arg(&xs_key)
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
}

#[test]
fn receive_over_https_polls_the_local_hub_every_second() {
    let hub = start_hub();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = hub.dir.clone();
    let cmd = move |args: &[&str]| {
        let mut c = zero_config(elsewhere.path(), Some(&dir));
        c.args(args);
        c
    };
    ok(bounded(cmd(&["device", "create", "poller"])));
    // the first poll finds the queue empty; what is sent after it comes with a poll a second
    // later, not IoT Hub's 25 minutes later
    let receiver = cmd(&[
        "receive",
        "--device",
        "poller",
        "--transport",
        "https",
        "--count",
        "1",
        "--json",
    ]);
    let receiving = std::thread::spawn(move || bounded(receiver));
    std::thread::sleep(Duration::from_secs(2));
    ok(bounded(cmd(&["send", "--device", "poller", "later"])));
    let out = receiving.join().unwrap();
    let received = ok(out.clone());
    assert!(received.contains(r#""body":"later""#), "{received}");
    assert!(
        !stderr(&out).contains("polling over HTTPS every"),
        "{}",
        stderr(&out)
    );

    // an interval of minutes is said, so that a long wait is no mystery
    ok(bounded(cmd(&["send", "--device", "poller", "queued"])));
    let out = bounded(cmd(&[
        "receive",
        "--device",
        "poller",
        "--transport",
        "https",
        "--poll-interval",
        "30m",
        "--count",
        "1",
    ]));
    assert!(ok(out.clone()).contains("queued"));
    assert!(
        stderr(&out).contains("polling over HTTPS every 30m once the queue is empty"),
        "{}",
        stderr(&out)
    );
}

/// `c2d send --devices-file` against a hub throttled as S3 × 1: a JSON line per device, the
/// unknown ones failing with their code, paced so that the hub refuses nothing, a summary,
/// and an exit status that says whether every device got the message.
#[test]
fn send_to_many_devices_from_a_file() {
    let hub = start_hub_with(&[
        "--tier",
        "S3",
        "--units",
        "1",
        "--throttle-backlog",
        "200ms",
    ]);
    let cmd = || zero_config(hub.root.path(), None);
    let devices: Vec<String> = (0..20).map(|i| format!("fan{i:02}")).collect();
    for d in &devices {
        let mut create = cmd();
        create.args(["device", "create", d]);
        ok(bounded(create));
    }
    let list = hub.root.path().join("devices.txt");
    let mut text = String::from("# the fleet\n");
    for d in devices
        .iter()
        .chain(["ghost1".to_string(), "ghost2".to_string()].iter())
    {
        text.push_str(d);
        text.push_str("\n\n");
    }
    std::fs::write(&list, text).unwrap();
    let mut send = cmd();
    send.args(["send", "--devices-file"]).arg(&list);
    send.args(["--tier", "S3", "--message-id", "fan-1", "--json", "reboot"]);
    let out = bounded(send);
    assert!(!out.status.success(), "two devices did not get it");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 23, "{stdout}");
    for d in &devices {
        let line = lines.iter().find(|l| l["deviceId"] == d.as_str()).unwrap();
        assert_eq!(line["event"], "sent");
        assert_eq!(line["messageId"], format!("fan-1:{d}"));
    }
    for d in ["ghost1", "ghost2"] {
        let line = lines.iter().find(|l| l["deviceId"] == d).unwrap();
        assert_eq!(line["event"], "failed");
        assert_eq!(line["error"], "C2D_DEVICE_NOT_FOUND");
    }
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["sent"], 20);
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["failedByError"]["C2D_DEVICE_NOT_FOUND"], 2);
    assert_eq!(summary["throttled"], 0, "{summary}");
    assert!(stderr(&out).contains("2 device(s) did not get the message"));

    // from standard input, only known devices: exit 0; the devices hold both messages
    let mut send = cmd();
    send.args(["send", "--devices-file", "-", "--rate", "50", "again"]);
    let mut child = send
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(devices.join("\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = ok(out.clone());
    assert_eq!(
        text.lines().filter(|l| l.starts_with("sent ")).count(),
        20,
        "{text}"
    );
    assert!(
        stderr(&out).contains("sent to 20 devices, failed 0"),
        "{}",
        stderr(&out)
    );
    let mut receive = cmd();
    receive.args([
        "receive",
        "--device",
        "fan07",
        "--count",
        "2",
        "--json",
        "--timeout",
        "20s",
    ]);
    let received = ok(bounded(receive));
    assert_eq!(received.lines().count(), 2, "{received}");

    // every device of the registry, read page by page as the sends go
    let mut send = cmd();
    send.args(["send", "--all-devices", "--tier", "S3", "--json", "to all"]);
    let all = ok(bounded(send));
    let sent: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["event"] == "sent")
        .collect();
    assert_eq!(sent.len(), 20, "{all}");
    assert!(all.contains(r#""sent":20"#), "{all}");

    // --wait: each device's outcome, as its device completes the message
    let receivers: Vec<_> = ["fan00", "fan01"]
        .iter()
        .map(|d| {
            let mut receive = cmd();
            receive.args(["receive", "--device", d, "--count", "4", "--timeout", "30s"]);
            receive
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let two = hub.root.path().join("two.txt");
    std::fs::write(&two, "fan00\nfan01\n").unwrap();
    let mut send = cmd();
    send.args(["send", "--devices-file"]).arg(&two);
    send.args([
        "--ack",
        "full",
        "--wait",
        "--json",
        "--message-id",
        "w",
        "waited",
    ]);
    let waited = ok(bounded(send));
    for d in ["fan00", "fan01"] {
        let record = waited
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["originalMessageId"] == format!("w:{d}"))
            .unwrap_or_else(|| panic!("no outcome of w:{d}: {waited}"));
        assert_eq!(record["statusCode"], "Success");
    }
    for mut r in receivers {
        assert!(r.wait().unwrap().success());
    }
}
