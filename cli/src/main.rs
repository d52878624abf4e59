//! `c2d`: run a local IoT hub and manage its devices.

mod bench;
mod demo;
mod fanout;
mod fault;
mod hub;
mod hub_process;
mod messaging;
mod registry;
mod soak;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Azure IoT Hub cloud-to-device messaging: a local hub and its tools.
#[derive(Parser)]
#[command(name = "c2d", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local IoT-Hub-compatible hub in the foreground (or `hub info`).
    Hub(hub::HubArgs),
    /// Create, show, delete or list devices through the hub's REST registry.
    Device(registry::DeviceArgs),
    /// Send a C2D message to a device (service side).
    Send(messaging::SendArgs),
    /// Receive C2D messages as a device, and complete, reject or abandon each.
    Receive(messaging::ReceiveArgs),
    /// Print delivery feedback records as they arrive (service side).
    Feedback(messaging::FeedbackArgs),
    /// Remove every message queued for a device (service side).
    Purge(messaging::PurgeArgs),
    /// Run the whole of C2D messaging on an embedded hub, and exit.
    Demo,
    /// Measure end-to-end throughput, latency and the hub's CPU and memory under load.
    Bench(bench::BenchArgs),
    /// Keep a load going while the hub is killed or the network fails; count lost messages.
    Soak(soak::SoakArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    c2d::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("c2d: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Hub(args) => hub::run(args).await,
            Command::Device(args) => registry::run(args).await,
            Command::Send(args) => messaging::send(args).await,
            Command::Receive(args) => messaging::receive(args).await,
            Command::Feedback(args) => messaging::feedback(args).await,
            Command::Purge(args) => messaging::purge(args).await,
            Command::Demo => demo::run().await,
            Command::Bench(args) => bench::run(args).await,
            Command::Soak(args) => soak::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c2d: {e:#}");
            ExitCode::FAILURE
        }
    }
}
