//! Prints how many C2D sends per second the hub's store accepts, with `fsync` and `os`
//! durability, for 1, 16 and 256 concurrent senders (group commit at work). Each send is
//! committed before it is counted, exactly as the AMQP endpoint answers `accepted`.
//!
//! `cargo run --release -p c2d-hub --example store_throughput [-- MESSAGES]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use c2d::Message;
use c2d_hub::store::Store;
use c2d_hub::{Durability, Limits, SystemClock};

#[tokio::main]
async fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    println!(
        "{:<10} {:>8} {:>12} {:>14}",
        "durability", "senders", "messages", "sends/s"
    );
    for durability in [Durability::Fsync, Durability::Os] {
        for senders in [1usize, 16, 256] {
            let dir = tempfile::tempdir().expect("temp dir");
            let limits = Limits {
                max_queue_depth: usize::MAX,
                ..Limits::default()
            };
            let store = Store::open(
                &dir.path().join("hub.db"),
                limits,
                durability,
                Arc::new(SystemClock),
            )
            .expect("store opens");
            store
                .exec(|s, now| {
                    s.put_device(now, "bench", c2d::Device::new_sas("bench"), None)
                        .map(|_| ())
                })
                .await
                .expect("committed")
                .expect("device created");
            // one sender alone waits for every fsync; fewer messages keep that run short
            let count = if senders == 1 && durability == Durability::Fsync {
                total / 10
            } else {
                total
            };
            let per_sender = count / senders;
            let started = Instant::now();
            let tasks: Vec<_> = (0..senders)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        for _ in 0..per_sender {
                            let m = Message::new(vec![b'x'; 256]).message_id("bench");
                            store
                                .exec(move |s, now| s.send(now, "bench", m))
                                .await
                                .expect("committed")
                                .expect("accepted");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("sender");
            }
            let elapsed = started.elapsed().max(Duration::from_micros(1));
            let sent = per_sender * senders;
            let name = match durability {
                Durability::Fsync => "fsync",
                Durability::Os => "os",
            };
            println!(
                "{name:<10} {senders:>8} {sent:>12} {:>14.0}",
                sent as f64 / elapsed.as_secs_f64()
            );
            store.close();
        }
    }
}
