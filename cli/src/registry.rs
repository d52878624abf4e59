//! `c2d device create|show|delete|list`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::target::ServiceTarget;

#[derive(Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    action: DeviceAction,
    /// Service connection string of a policy with registry rights (iothubowner).
    /// Without it: the local hub in $C2D_HUB_DIR, else ./.c2d-hub.
    #[arg(
        long,
        env = "IOTHUB_SERVICE_CONNECTION_STRING",
        global = true,
        hide_env_values = true
    )]
    connection_string: Option<String>,
    /// PEM file of the CA to trust (a local hub's ca.pem).
    #[arg(long, env = "IOTHUB_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// host:port to connect to instead of HostName:443.
    #[arg(long, env = "IOTHUB_ENDPOINT", global = true)]
    endpoint: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum DeviceAction {
    /// Register a device and print its connection string.
    Create {
        /// Device id.
        id: String,
    },
    /// Show a device.
    Show {
        /// Device id.
        id: String,
    },
    /// Delete a device and its queue.
    Delete {
        /// Device id.
        id: String,
    },
    /// List devices.
    List,
}

pub async fn run(a: DeviceArgs) -> Result<()> {
    let target =
        ServiceTarget::resolve(a.connection_string.as_deref(), a.ca_file.as_deref()).await?;
    let client = target.registry(a.endpoint)?;
    match a.action {
        DeviceAction::Create { id } => {
            let d = client.create_device(&id).await?;
            let dcs = d.connection_string(client.host_name()).unwrap_or_default();
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"deviceId": d.device_id, "connectionString": dcs})
                );
            } else {
                println!("{dcs}");
            }
        }
        DeviceAction::Show { id } => {
            let d = client.get_device(&id).await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
        }
        DeviceAction::Delete { id } => {
            client.delete_device(&id).await?;
            if !a.json {
                println!("deleted {id}");
            }
        }
        DeviceAction::List => {
            let devices = client.list_devices(1000).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&devices)?);
            } else {
                for d in devices {
                    println!(
                        "{}\t{}\t{} queued",
                        d.device_id, d.status, d.cloud_to_device_message_count
                    );
                }
            }
        }
    }
    Ok(())
}
