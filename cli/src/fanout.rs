//! `c2d send --devices-file FILE` and `--all-devices`: one message to many devices through
//! `ServiceClient::send_many`, a line (or JSON line) per device, progress on a terminal, a
//! summary, and an exit status that says whether every device got the message.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use c2d::{FanOut, FanOutSummary, Message, SendMany, SentMessage, ServiceClient};
use serde_json::json;

/// Where the devices of a fan-out come from.
pub enum Fleet {
    /// A file of ids (`-`: standard input).
    File(PathBuf),
    /// Every device of the registry.
    Registry,
}

/// Ids asked of the registry at a time.
const REGISTRY_PAGE: u32 = 1000;

/// Every device id of the registry, a page at a time as the run takes them (a throttled page
/// retried per the default policy); an error that ends the paging is kept in `failed`.
fn registry_ids(
    service: &ServiceClient,
    failed: Arc<Mutex<Option<c2d::Error>>>,
) -> impl futures_util::Stream<Item = String> + Send + 'static {
    use futures_util::StreamExt;
    let registry = service.registry().clone();
    futures_util::stream::unfold(Some(None::<String>), move |state| {
        let (registry, failed) = (registry.clone(), failed.clone());
        async move {
            let continuation = state?;
            let page = c2d::retry::retry(&c2d::RetryPolicy::default(), || {
                registry.device_ids_page(continuation.as_deref(), REGISTRY_PAGE)
            })
            .await;
            match page {
                Ok(page) => Some((
                    futures_util::stream::iter(page.device_ids),
                    page.continuation.map(Some),
                )),
                Err(e) => {
                    *failed.lock().expect("failed lock") = Some(e);
                    None
                }
            }
        }
    })
    .flatten()
}

/// The device ids of a file (or of standard input for `-`), read as they are needed: one a
/// line, blank lines and `#` comments skipped.
fn device_ids(path: &Path) -> Result<Box<dyn Iterator<Item = String> + Send>> {
    let reader: Box<dyn BufRead + Send> = if path == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(File::open(path).with_context(|| {
            format!("opening --devices-file {}", path.display())
        })?))
    };
    Ok(Box::new(
        reader
            .lines()
            .map_while(|l| match l {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("c2d: reading the devices file stopped: {e}");
                    None
                }
            })
            .filter_map(|l| {
                let id = l.trim();
                (!id.is_empty() && !id.starts_with('#')).then(|| id.to_string())
            }),
    ))
}

/// How many ids a file holds (for the progress's ETA; unknown for standard input).
fn count_ids(path: &Path) -> Option<u64> {
    if path == Path::new("-") {
        return None;
    }
    let file = File::open(path).ok()?;
    Some(
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
            .count() as u64,
    )
}

/// The progress line: on a terminal redrawn in place, otherwise a plain line now and then.
struct Progress {
    terminal: bool,
    total: Option<u64>,
    last: Instant,
}

impl Progress {
    fn show(&mut self, s: &FanOutSummary, force: bool) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if !force && self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let done = s.sent + s.failed_total();
        let secs = s.elapsed.as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = match self.total {
            Some(t) if rate > 0.0 && t >= done => {
                format!(
                    ", ETA {}",
                    humantime::format_duration(Duration::from_secs(
                        ((t - done) as f64 / rate).ceil() as u64
                    ))
                )
            }
            _ => String::new(),
        };
        let of = self.total.map_or(String::new(), |t| format!(" of {t}"));
        let line = format!(
            "{done}{of} done: {} sent, {} failed, {:.1}/s{eta}",
            s.sent,
            s.failed_total(),
            rate
        );
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }

    fn end(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn summary_json(s: &FanOutSummary) -> serde_json::Value {
    let failed: serde_json::Map<String, serde_json::Value> = s
        .failed
        .iter()
        .map(|(k, n)| (k.code().to_string(), json!(n)))
        .collect();
    json!({
        "event": "summary",
        "sent": s.sent,
        "failed": s.failed_total(),
        "failedByError": failed,
        "retried": s.retried,
        "throttled": s.throttled,
        "elapsedMs": s.elapsed.as_millis() as u64,
        "stopped": s.stopped.as_ref().map(|e| json!({"error": e.kind().code(), "message": e.message()})),
        "cancelled": s.cancelled,
    })
}

/// Sends `message` to every device of `file`, printing each result; then, with `wait`,
/// each sent message's feedback.
pub async fn send_many(
    service: &ServiceClient,
    fleet: Fleet,
    message: Message,
    fan: FanOut,
    wait: bool,
    as_json: bool,
) -> Result<()> {
    let paging_failed = Arc::new(Mutex::new(None));
    let (mut run, total): (SendMany, Option<u64>) = match &fleet {
        Fleet::File(file) => (
            service.send_many(device_ids(file)?, message, fan)?,
            count_ids(file),
        ),
        Fleet::Registry => (
            service.send_many_stream(registry_ids(service, paging_failed.clone()), message, fan)?,
            None,
        ),
    };
    let stopper = run.stopper();
    let mut progress = Progress {
        terminal: std::io::stderr().is_terminal(),
        total,
        last: Instant::now(),
    };
    let mut waiting: Vec<SentMessage> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut interrupted = false;
    loop {
        let next = tokio::select! {
            next = run.next() => next,
            _ = tick.tick() => {
                progress.show(&run.summary(), false);
                continue;
            }
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                // stop starting sends; those in flight are still reported
                interrupted = true;
                stopper.stop();
                continue;
            }
        };
        let Some((device, result)) = next else { break };
        if progress.terminal {
            eprint!("\r\x1b[2K");
        }
        match result {
            Ok(sent) => {
                if as_json {
                    println!(
                        "{}",
                        json!({"event": "sent", "deviceId": device, "messageId": sent.message_id()})
                    );
                } else {
                    println!("sent {} to {device}", sent.message_id());
                }
                if wait {
                    waiting.push(sent);
                }
            }
            Err(e) => {
                if as_json {
                    println!(
                        "{}",
                        json!({"event": "failed", "deviceId": device, "error": e.kind().code(), "message": e.message()})
                    );
                } else {
                    println!("failed {device}: {e}");
                }
            }
        }
        progress.show(&run.summary(), false);
    }
    let summary = run.summary();
    progress.end();
    if as_json {
        println!("{}", summary_json(&summary));
    } else {
        let mut by_kind: Vec<String> = summary
            .failed
            .iter()
            .map(|(k, n)| format!("{n} {}", k.code()))
            .collect();
        if by_kind.is_empty() {
            by_kind.push("none".into());
        }
        eprintln!(
            "sent to {} devices, failed {} ({}), {} retries ({} throttled), in {}",
            summary.sent,
            summary.failed_total(),
            by_kind.join(", "),
            summary.retried,
            summary.throttled,
            humantime::format_duration(Duration::from_millis(summary.elapsed.as_millis() as u64))
        );
        if let Some(e) = &summary.stopped {
            eprintln!("stopped early: {e}");
        }
    }
    if wait && !waiting.is_empty() {
        use futures_util::StreamExt;
        if std::io::stderr().is_terminal() {
            eprintln!("waiting for each message's feedback… (Ctrl-C to stop)");
        }
        let mut outcomes = futures_util::stream::iter(waiting)
            .map(|sent| async move { sent.outcome().await })
            .buffer_unordered(256);
        while let Some(record) = outcomes.next().await {
            crate::messaging::print_record(&record?, as_json);
        }
    }
    if let Some(e) = summary.stopped {
        bail!("the run stopped: {e}");
    }
    if let Some(e) = paging_failed.lock().expect("failed lock").take() {
        bail!("reading the registry stopped the run early: {e}");
    }
    if summary.failed_total() > 0 || summary.cancelled {
        bail!(
            "{} device(s) did not get the message{}",
            summary.failed_total(),
            if summary.cancelled {
                " (interrupted: the rest were not tried)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
