//! Duplicate suppression (opt-in, [`DeviceOptions::duplicates`](super::DeviceOptions)): C2D
//! is at-least-once, so a message the application completed comes again when the
//! completion was lost (a dropped connection, an acknowledgement lost on the way, a lock
//! that ran out). The client remembers the ids of the messages the application completed or
//! rejected — a window bounded by count and age — and settles one that comes again the same
//! way, without handing it over, counting it.
//!
//! With a file the window is durable: each id is written (appended) before its settlement
//! is sent, so a process killed after handling a message and before its acknowledgement
//! reached the hub does not see it again after a restart; the file is synced in batches (at
//! most [`SYNC_EVERY`] ids or [`SYNC_AFTER`] unsynced, and at close), which bounds what a
//! power loss, not a process kill, can take. The file is rewritten when it holds twice the
//! window.
//!
//! What no client can close: a crash after the application acted on a message and before
//! it settled it. The application closes that window by making its action idempotent on
//! the message id (the same store, in the same transaction as its effect).

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Settlement;
use crate::error::{Error, ErrorKind, Result};

/// Most ids written before the file is synced.
pub const SYNC_EVERY: usize = 64;
/// Longest an id stays written and unsynced when another comes.
pub const SYNC_AFTER: Duration = Duration::from_millis(200);

/// How many message ids the window keeps by default.
pub const DEFAULT_COUNT: usize = 10_000;
/// How long an id is kept by default: 48 hours, IoT Hub's longest message TTL (no message
/// comes again later than that).
pub const DEFAULT_AGE: Duration = Duration::from_secs(48 * 3600);

/// The options of duplicate suppression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateOptions {
    /// Most message ids kept (the oldest go first); at least 1.
    pub count: usize,
    /// How long an id is kept after its message was settled.
    pub age: Duration,
    /// Keep the window in this file too, across restarts and crashes of the process (one
    /// client at a time per file).
    pub file: Option<PathBuf>,
}

impl DuplicateOptions {
    /// The options a binding's flags ask for: `suppress` with the default window, a `file`
    /// (which implies `suppress`); `None` when neither.
    pub fn from_options(suppress: bool, file: Option<PathBuf>) -> Option<DuplicateOptions> {
        (suppress || file.is_some()).then(|| DuplicateOptions {
            file,
            ..DuplicateOptions::default()
        })
    }
}

impl Default for DuplicateOptions {
    fn default() -> Self {
        DuplicateOptions {
            count: DEFAULT_COUNT,
            age: DEFAULT_AGE,
            file: None,
        }
    }
}

/// The ids of messages settled, newest last.
struct Window {
    outcome: HashMap<String, (Settlement, SystemTime)>,
    order: VecDeque<(String, SystemTime)>,
    file: Option<Journal>,
}

/// The window's file: an append-only list of `unix-millis <TAB> C|R <TAB> id` lines.
struct Journal {
    path: PathBuf,
    file: File,
    lines: usize,
    unsynced: usize,
    since: Option<Instant>,
}

/// A device client's window of settled message ids.
pub(crate) struct Duplicates {
    options: DuplicateOptions,
    window: Mutex<Window>,
    suppressed: AtomicU64,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("duplicates file {}: {what}: {e}", path.display()),
    )
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn letter(how: Settlement) -> &'static str {
    match how {
        Settlement::Reject => "R",
        _ => "C",
    }
}

/// One line of the file, if it is whole and well formed (a line torn by a crash is not).
fn parse_line(line: &str) -> Option<(String, Settlement, SystemTime)> {
    let mut parts = line.splitn(3, '\t');
    let at = parts.next()?.parse::<u64>().ok()?;
    let how = match parts.next()? {
        "C" => Settlement::Complete,
        "R" => Settlement::Reject,
        _ => return None,
    };
    let id = parts.next()?;
    if id.is_empty() {
        return None;
    }
    Some((id.to_string(), how, UNIX_EPOCH + Duration::from_millis(at)))
}

impl Window {
    fn insert(&mut self, id: String, how: Settlement, at: SystemTime, options: &DuplicateOptions) {
        self.outcome.insert(id.clone(), (how, at));
        self.order.push_back((id, at));
        self.trim(at, options);
    }

    /// Forgets ids beyond the count or older than the age.
    fn trim(&mut self, now: SystemTime, options: &DuplicateOptions) {
        while let Some((id, at)) = self.order.front() {
            let old = now.duration_since(*at).is_ok_and(|age| age > options.age);
            if self.order.len() <= options.count.max(1) && !old {
                break;
            }
            // an id settled again later has a newer entry: only that one counts
            if self.outcome.get(id).is_some_and(|(_, t)| t == at) {
                self.outcome.remove(id);
            }
            self.order.pop_front();
        }
    }
}

impl Journal {
    fn open(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error("making its directory", path, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| io_error("opening", path, e))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            lines: 0,
            unsynced: 0,
            since: None,
        })
    }

    fn append(&mut self, id: &str, how: Settlement, at: SystemTime) -> std::io::Result<()> {
        let line = format!("{}\t{}\t{id}\n", millis(at), letter(how));
        // one write: a kill leaves the line whole or absent (a torn one is skipped at load)
        self.file.write_all(line.as_bytes())?;
        self.lines += 1;
        self.unsynced += 1;
        let since = *self.since.get_or_insert_with(Instant::now);
        if self.unsynced >= SYNC_EVERY || since.elapsed() >= SYNC_AFTER {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced > 0 {
            self.file.sync_data()?;
            self.unsynced = 0;
            self.since = None;
        }
        Ok(())
    }

    /// Writes the window anew (a temporary file renamed over the old one).
    fn rewrite(
        &mut self,
        order: &VecDeque<(String, SystemTime)>,
        outcome: &HashMap<String, (Settlement, SystemTime)>,
    ) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut text = String::new();
        for (id, at) in order {
            if let Some((how, t)) = outcome.get(id) {
                if t == at {
                    text.push_str(&format!("{}\t{}\t{id}\n", millis(*at), letter(*how)));
                }
            }
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.file = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&self.path)?;
        self.lines = order.len();
        self.unsynced = 0;
        self.since = None;
        Ok(())
    }
}

impl std::fmt::Debug for Duplicates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Duplicates")
            .field("options", &self.options)
            .field("suppressed", &self.suppressed_count())
            .finish_non_exhaustive()
    }
}

impl Duplicates {
    /// A window as `options` say, loaded from its file if it has one.
    pub fn open(options: DuplicateOptions) -> Result<Duplicates> {
        let mut window = Window {
            outcome: HashMap::new(),
            order: VecDeque::new(),
            file: None,
        };
        if let Some(path) = &options.file {
            let mut journal = Journal::open(path)?;
            let now = SystemTime::now();
            let mut lines = 0;
            for line in BufReader::new(&journal.file).lines() {
                let line = line.map_err(|e| io_error("reading", path, e))?;
                lines += 1;
                if let Some((id, how, at)) = parse_line(&line) {
                    window.insert(id, how, at, &options);
                }
            }
            window.trim(now, &options);
            journal.lines = lines;
            window.file = Some(journal);
            tracing::debug!(path = %path.display(), ids = window.outcome.len(), "c2d device: duplicates window loaded");
        }
        Ok(Duplicates {
            options,
            window: Mutex::new(window),
            suppressed: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the message `id` was settled before, if it is in the window: it is a duplicate.
    pub fn seen(&self, id: &str) -> Option<Settlement> {
        let now = SystemTime::now();
        let w = self.lock();
        let (how, at) = w.outcome.get(id)?;
        let fresh = now
            .duration_since(*at)
            .map_or(true, |age| age <= self.options.age);
        fresh.then_some(*how)
    }

    /// Counts a duplicate settled without being handed over.
    pub fn suppressed(&self) {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
    }

    /// Duplicates settled without being handed over since the client connected.
    pub fn suppressed_count(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// Remembers that the application settled message `id` `how` (complete or reject): in
    /// memory, and written to the file before the settlement is sent. An id that cannot be
    /// a line of the file (it holds a line break) is not remembered.
    pub fn remember(&self, id: &str, how: Settlement) {
        if id.is_empty() || id.contains(['\n', '\r']) {
            return;
        }
        let now = SystemTime::now();
        let mut w = self.lock();
        w.insert(id.to_string(), how, now, &self.options);
        let Window {
            order,
            outcome,
            file,
            ..
        } = &mut *w;
        if let Some(journal) = file.as_mut() {
            let result = if journal.lines >= 2 * self.options.count.max(1) + SYNC_EVERY {
                journal.rewrite(order, outcome)
            } else {
                journal.append(id, how, now)
            };
            if let Err(e) = result {
                tracing::warn!(path = %journal.path.display(), error = %e, "c2d device: could not write the duplicates file");
            }
        }
    }

    /// Syncs what is written and not yet synced (at close).
    pub fn sync(&self) {
        if let Some(journal) = self.lock().file.as_mut() {
            if let Err(e) = journal.sync() {
                tracing::warn!(path = %journal.path.display(), error = %e, "c2d device: could not sync the duplicates file");
            }
        }
    }
}

impl Drop for Duplicates {
    fn drop(&mut self) {
        self.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_newest_ids() {
        let d = Duplicates::open(DuplicateOptions {
            count: 3,
            ..Default::default()
        })
        .unwrap();
        for id in ["a", "b", "c", "d"] {
            d.remember(id, Settlement::Complete);
        }
        assert_eq!(d.seen("a"), None);
        assert_eq!(d.seen("d"), Some(Settlement::Complete));
        d.remember("b", Settlement::Reject);
        assert_eq!(d.seen("b"), Some(Settlement::Reject));
        assert_eq!(d.seen("zzz"), None);
    }

    #[test]
    fn old_ids_are_forgotten() {
        let d = Duplicates::open(DuplicateOptions {
            age: Duration::ZERO,
            ..Default::default()
        })
        .unwrap();
        d.remember("a", Settlement::Complete);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(d.seen("a"), None);
    }

    #[test]
    fn the_file_keeps_the_window_across_opens_and_is_rewritten_when_long() {
        let dir = tempfile::tempdir().unwrap();
        let options = DuplicateOptions {
            count: 10,
            file: Some(dir.path().join("sub/dups")),
            ..Default::default()
        };
        {
            let d = Duplicates::open(options.clone()).unwrap();
            for i in 0..200 {
                d.remember(&format!("m{i}"), Settlement::Complete);
            }
            d.remember("r", Settlement::Reject);
            d.remember("bad\nid", Settlement::Complete);
        }
        // a line torn by a crash
        let path = options.file.clone().unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"12345\tC").unwrap();
        drop(f);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(
            lines <= 2 * 10 + SYNC_EVERY + 2,
            "{lines} lines: never rewritten"
        );
        let d = Duplicates::open(options).unwrap();
        assert_eq!(d.seen("r"), Some(Settlement::Reject));
        assert_eq!(d.seen("m199"), Some(Settlement::Complete));
        assert_eq!(d.seen("m0"), None);
        assert_eq!(d.seen("bad\nid"), None);
    }
}
