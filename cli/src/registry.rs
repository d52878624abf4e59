//! `c2d device create|certificate|show|delete|list`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use c2d::Device;
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
    /// Register a device and print its connection string (SAS keys the hub makes, unless an
    /// X.509 option is given).
    Create {
        /// Device id.
        id: String,
        /// An X.509 device (`selfSigned`) known by this certificate thumbprint (SHA-1 or
        /// SHA-256, hex); give it twice for the primary and the secondary.
        #[arg(long = "x509-thumbprint", value_name = "HEX", num_args = 1, action = clap::ArgAction::Append,
              conflicts_with_all = ["x509_ca", "x509_self_signed"])]
        x509_thumbprint: Vec<String>,
        /// An X.509 device (`certificateAuthority`) whose certificate chains to a CA the hub
        /// trusts (`c2d hub --x509-ca`) and names the device in its common name.
        #[arg(long = "x509-ca", conflicts_with = "x509_self_signed")]
        x509_ca: bool,
        /// Make a self-signed certificate and key for the device, valid for a year, as
        /// DIR/{id}.cert.pem and DIR/{id}.key.pem, and register its thumbprint (development).
        #[arg(long = "x509-self-signed", value_name = "DIR")]
        x509_self_signed: Option<PathBuf>,
    },
    /// Make a development X.509 certificate and key for a device: self-signed (register its
    /// thumbprint with `create --x509-thumbprint`), or signed by a CA (for a
    /// `certificateAuthority` device); writes DIR/{id}.cert.pem and DIR/{id}.key.pem and
    /// prints the thumbprints. Needs no hub.
    Certificate {
        /// Device id (the certificate's common name).
        id: String,
        /// Where to write the files.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Sign with this CA certificate (PEM) instead of self-signing.
        #[arg(long, requires = "ca_key", value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// The CA's private key (PEM).
        #[arg(long, requires = "ca_cert", value_name = "FILE")]
        ca_key: Option<PathBuf>,
        /// Days the certificate is valid from now.
        #[arg(long, default_value_t = 365)]
        days: u32,
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

/// The files of a certificate made by [`make_certificate`].
struct CertificateFiles {
    cert: c2d_hub::x509::DeviceCertificate,
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// Makes a device certificate (self-signed, or signed by the CA of `ca`) valid for `days` and
/// writes it and its key into `dir`.
fn make_certificate(
    id: &str,
    dir: &std::path::Path,
    ca: Option<(&std::path::Path, &std::path::Path)>,
    days: u32,
) -> Result<CertificateFiles> {
    c2d::identity::validate_id(id).map_err(anyhow::Error::msg)?;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let ca = match ca {
        Some((cert, key)) => Some((read(cert)?, read(key)?)),
        None => None,
    };
    let signing = ca
        .as_ref()
        .map(|(cert_pem, key_pem)| c2d_hub::x509::SigningCa { cert_pem, key_pem });
    let cert = c2d_hub::x509::device_certificate(id, c2d_hub::x509::valid_for_days(days), signing)
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let (cert_file, key_file) = (
        dir.join(format!("{id}.cert.pem")),
        dir.join(format!("{id}.key.pem")),
    );
    std::fs::write(&cert_file, &cert.cert_pem)
        .with_context(|| format!("writing {}", cert_file.display()))?;
    c2d_hub::data_dir::write_private(&key_file, &cert.key_pem)
        .with_context(|| format!("writing {}", key_file.display()))?;
    Ok(CertificateFiles {
        cert,
        cert_file,
        key_file,
    })
}

/// The registry of the hub the options name.
async fn registry(
    connection_string: Option<&str>,
    ca_file: Option<&std::path::Path>,
    endpoint: Option<String>,
) -> Result<c2d::RegistryClient> {
    ServiceTarget::resolve(connection_string, ca_file)
        .await?
        .registry(endpoint)
}

pub async fn run(a: DeviceArgs) -> Result<()> {
    // `device certificate` needs no hub: the others connect in their own arm
    let connect = || {
        registry(
            a.connection_string.as_deref(),
            a.ca_file.as_deref(),
            a.endpoint.clone(),
        )
    };
    match a.action {
        DeviceAction::Create {
            id,
            x509_thumbprint,
            x509_ca,
            x509_self_signed,
        } => {
            let client = connect().await?;
            let mut files = None;
            let body = if let Some(dir) = x509_self_signed {
                let f = make_certificate(&id, &dir, None, 365)?;
                let body = Device::new_self_signed(&id, f.cert.sha1_thumbprint.clone(), None);
                files = Some((f.cert_file, f.key_file));
                body
            } else if let Some(primary) = x509_thumbprint.first() {
                if x509_thumbprint.len() > 2 {
                    anyhow::bail!("--x509-thumbprint takes a primary and a secondary, no more");
                }
                Device::new_self_signed(&id, primary, x509_thumbprint.get(1).cloned())
            } else if x509_ca {
                Device::new_certificate_authority(&id)
            } else {
                Device::new_sas(&id)
            };
            let d = client.create_device_with(&body).await?;
            let dcs = d.connection_string(client.host_name()).unwrap_or_default();
            if a.json {
                let mut line =
                    serde_json::json!({"deviceId": d.device_id, "connectionString": dcs});
                if let Some((cert, key)) = &files {
                    line["certFile"] = serde_json::json!(cert);
                    line["keyFile"] = serde_json::json!(key);
                }
                println!("{line}");
            } else {
                println!("{dcs}");
                if let Some((cert, key)) = &files {
                    eprintln!(
                        "certificate {} and key {} (receive with --cert-file and --key-file)",
                        cert.display(),
                        key.display()
                    );
                }
            }
        }
        DeviceAction::Show { id } => {
            let d = connect().await?.get_device(&id).await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
        }
        DeviceAction::Delete { id } => {
            connect().await?.delete_device(&id).await?;
            if !a.json {
                println!("deleted {id}");
            }
        }
        DeviceAction::Certificate {
            id,
            out,
            ca_cert,
            ca_key,
            days,
        } => {
            let ca = ca_cert.as_deref().zip(ca_key.as_deref());
            let f = make_certificate(&id, &out, ca, days)?;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "deviceId": id,
                        "certFile": f.cert_file,
                        "keyFile": f.key_file,
                        "sha1Thumbprint": f.cert.sha1_thumbprint,
                        "sha256Thumbprint": f.cert.sha256_thumbprint,
                    })
                );
            } else {
                println!("{}", f.cert.sha1_thumbprint);
                eprintln!(
                    "certificate {} and key {} (SHA-256 thumbprint {})",
                    f.cert_file.display(),
                    f.key_file.display(),
                    f.cert.sha256_thumbprint
                );
            }
        }
        DeviceAction::List => {
            let devices = connect().await?.list_devices(1000).await?;
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
