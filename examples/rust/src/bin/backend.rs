//! A back-end application: sends three commands to a device with `ack=full` and prints each
//! command's own outcome as the hub reports it; exits non-zero unless every outcome is the
//! expected one (reboot: Success, update: Success after a retry, dance: Rejected).
//!
//! env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_DEVICE_ID,
//! C2D_AMQP_PORT and C2D_HTTPS_PORT (optional).

use std::time::Duration;

use c2d::{Ack, FeedbackStatus, Message, ServiceClient};
use c2d_examples::{ca, env, port};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = ServiceClient::builder(&env("IOTHUB_SERVICE_CONNECTION_STRING")?)?;
    if let Some(pem) = ca()? {
        builder = builder.trusted_ca_pem(pem);
    }
    if let Some(p) = port("C2D_AMQP_PORT")? {
        builder = builder.port(p);
    }
    if let Some(p) = port("C2D_HTTPS_PORT")? {
        builder = builder.https_port(p);
    }
    let service = builder.connect().await?;
    let device = env("C2D_DEVICE_ID")?;
    let mut sent = Vec::new();
    for (command, expected) in [
        ("reboot", FeedbackStatus::Success),
        ("update", FeedbackStatus::Success),
        ("dance", FeedbackStatus::Rejected),
    ] {
        let m = Message::new(format!("{command} now"))
            .ack(Ack::Full)
            .property("command", command)
            .ttl(Duration::from_secs(600));
        let s = service.send(&device, m).await?;
        println!("backend: sent {command} as {}", s.message_id());
        sent.push((command, expected, s));
    }
    let mut wrong = 0;
    for (command, expected, s) in sent {
        let record = tokio::time::timeout(Duration::from_secs(60), s.outcome()).await??;
        println!("backend: {command}: {}", record.status);
        if record.status != expected {
            eprintln!("backend: {command}: expected {expected}");
            wrong += 1;
        }
    }
    service.close().await;
    if wrong > 0 {
        return Err(format!("{wrong} unexpected outcome(s)").into());
    }
    Ok(())
}
