//! A device application: receives its C2D messages and settles each by what it asks for:
//! `command=reboot` is done (complete), an unknown command is refused (reject), and
//! `command=update` is retried once later (abandon, then complete).
//!
//! env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_TRANSPORT
//! (mqtt|mqtt-ws|amqp|amqp-ws|https, default amqp), C2D_PORT (optional), C2D_COUNT (messages to
//! handle before exiting, default: run until stopped).

use c2d::{DeviceClient, Transport};
use c2d_examples::{ca, env, env_opt, port};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transport: Transport = env_opt("C2D_TRANSPORT")
        .as_deref()
        .unwrap_or("amqp")
        .parse()?;
    let mut builder =
        DeviceClient::builder(&env("IOTHUB_DEVICE_CONNECTION_STRING")?)?.transport(transport);
    if let Some(pem) = ca()? {
        builder = builder.trusted_ca_pem(pem);
    }
    if let Some(p) = port("C2D_PORT")? {
        builder = builder.port(p);
    }
    let device = builder.connect().await?;
    let count: Option<usize> = env_opt("C2D_COUNT").map(|c| c.parse()).transpose()?;
    println!("device: connected over {transport:?}");
    let mut handled = 0;
    while count.is_none_or(|c| handled < c) {
        let Some(msg) = device.recv().await? else {
            break;
        };
        let command = msg
            .message()
            .get_property("command")
            .unwrap_or("")
            .to_string();
        let body = String::from_utf8_lossy(msg.body()).into_owned();
        match command.as_str() {
            "reboot" => {
                println!("device: rebooting ({body})");
                msg.complete().await?;
                handled += 1;
            }
            "update" if msg.delivery_count() == 0 => {
                println!("device: busy, update later ({body})");
                msg.abandon().await?;
            }
            "update" => {
                println!(
                    "device: updating ({body}), delivery {}",
                    msg.delivery_count() + 1
                );
                msg.complete().await?;
                handled += 1;
            }
            other => {
                println!("device: unknown command {other:?}, refused");
                msg.reject().await?;
                handled += 1;
            }
        }
    }
    device.close().await;
    Ok(())
}
