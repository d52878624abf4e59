//! Durable state: SQLite in WAL mode, written by one thread with group commit.
//!
//! Every operation runs as a job on the writer thread: it mutates the hub's state
//! (`HubState`) in memory, the rows it changed are written in the batch's transaction, and
//! the job's answer is released
//! only after that transaction has committed (synced to disk with [`Durability::Fsync`]).
//! Many jobs share one commit and one fsync. If a commit fails, the batch's jobs fail and
//! the memory state is reloaded from disk, so the two never disagree. Changes that recovery
//! never needs (a delivery's lock) skip the writer: [`Store::apply`]. A send changes the
//! state on the sender's task and is answered by its message's commit or by its settlement,
//! whichever comes first; a message settled before its commit is never written
//! ([`Store::send`]).

mod rows;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use crate::clock::Clock;
use crate::state::limits::Limits;
use crate::state::{HubState, Wakeup};

/// The database file in a hub's data directory.
pub const DB_FILE: &str = "hub.db";

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: an accepted message survives a crash and a power loss.
    #[default]
    Fsync,
    /// `synchronous=NORMAL`: survives a crash of the hub, not a power loss; faster.
    Os,
}

impl std::str::FromStr for Durability {
    type Err = c2d::Error;
    /// `fsync` or `os`.
    fn from_str(s: &str) -> Result<Self, c2d::Error> {
        match s {
            "fsync" => Ok(Durability::Fsync),
            "os" => Ok(Durability::Os),
            other => Err(c2d::Error::invalid_argument(format!(
                "durability is fsync or os, not {other:?}"
            ))),
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store was closed (the hub is stopping).
    #[error("the hub is shutting down")]
    Closed,
    /// Writing to disk failed; nothing of the operation was kept.
    #[error("the hub could not write to its store: {0}")]
    Io(String),
}

type Reply = Box<dyn FnOnce(bool) + Send>;
type Change = Box<dyn FnOnce(&mut HubState, SystemTime) -> Reply + Send>;

/// A change for the writer thread, and how soon the rows it changed are to be committed
/// (its answer, if it has one, waits for that commit).
struct Job {
    run: Change,
    within: Duration,
}

/// The senders waiting for their answer, by the sequence number of their message.
type Waiters = Mutex<HashMap<u64, oneshot::Sender<bool>>>;

/// Answers the senders of `seqs` (those still waiting).
fn answer(waiters: &Waiters, seqs: impl IntoIterator<Item = u64>, ok: bool) {
    let mut waiting = waiters.lock().unwrap_or_else(|e| e.into_inner());
    for seq in seqs {
        if let Some(w) = waiting.remove(&seq) {
            let _ = w.send(ok);
        }
    }
}

/// Waits for the answer of a commit: `Ok` once it is on disk (or, for a send, its message
/// settled), the commit's failure, or the store's stop.
async fn committed(rx: oneshot::Receiver<bool>) -> Result<(), StoreError> {
    match rx.await {
        Ok(true) => Ok(()),
        Ok(false) => Err(StoreError::Io("the commit failed".into())),
        Err(_) => Err(StoreError::Io(
            "the store stopped during the operation".into(),
        )),
    }
}

/// Answers every sender still waiting.
fn answer_all(waiters: &Waiters, ok: bool) {
    let waiting = std::mem::take(&mut *waiters.lock().unwrap_or_else(|e| e.into_inner()));
    for w in waiting.into_values() {
        let _ = w.send(ok);
    }
}

/// Wakes the tasks waiting for a device's messages or for feedback.
#[derive(Debug)]
pub struct Waker {
    devices: Mutex<HashMap<String, watch::Sender<u64>>>,
    feedback: watch::Sender<u64>,
}

impl Waker {
    fn new() -> Self {
        Waker {
            devices: Mutex::new(HashMap::new()),
            feedback: watch::channel(0).0,
        }
    }

    /// Changes whenever a device's queue may have something to deliver.
    pub fn device(&self, id: &str) -> watch::Receiver<u64> {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        devices
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Changes whenever the feedback queue may have something to deliver.
    pub fn feedback(&self) -> watch::Receiver<u64> {
        self.feedback.subscribe()
    }

    fn wake(&self, w: &Wakeup) {
        match w {
            Wakeup::Device(id) => {
                let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(tx) = devices.get(id) {
                    tx.send_modify(|n| *n += 1);
                }
            }
            Wakeup::Feedback => self.feedback.send_modify(|n| *n += 1),
        }
    }
}

/// The writer's own measures, for the hub's metrics.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    /// How long each commit took (the transaction and, with [`Durability::Fsync`], its sync).
    pub commit_seconds: prometheus::Histogram,
    /// Commits synced to disk before their jobs were answered (every commit with
    /// [`Durability::Fsync`]; none with [`Durability::Os`], where SQLite syncs at checkpoints).
    pub fsyncs: prometheus::IntCounter,
}

impl StoreMetrics {
    fn new() -> Self {
        let commit_seconds = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "c2d_hub_store_commit_seconds",
                "Time each store commit took (writing its rows, and syncing them with durability fsync)",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid histogram options");
        let fsyncs = prometheus::IntCounter::new(
            "c2d_hub_store_fsyncs_total",
            "Store commits synced to disk before their operations were answered",
        )
        .expect("valid counter options");
        StoreMetrics {
            commit_seconds,
            fsyncs,
        }
    }
}

struct Inner {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    metrics: StoreMetrics,
    state: Arc<Mutex<HubState>>,
    waker: Arc<Waker>,
    clock: Arc<dyn Clock>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Commits wait until then (a fault: a slow disk).
    stall: Arc<Mutex<Option<std::time::Instant>>>,
    /// Senders waiting for their answer ([`Store::send`]).
    waiters: Arc<Waiters>,
    /// The soonest commit asked for by [`Store::apply`] and [`Store::send`] and not yet
    /// begun: they ask only for a sooner one (one wake-up of the writer per commit, not per
    /// change).
    asked: Arc<Mutex<Option<std::time::Instant>>>,
}

/// The hub's durable state and its writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store at `path` and loads the state. A new store gets the
    /// default shared access policies.
    pub fn open(
        path: &Path,
        limits: Limits,
        durability: Durability,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path).map_err(io)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(io)?;
        let sync = match durability {
            Durability::Fsync => "FULL",
            Durability::Os => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(io)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(io)?;
        // small, frequent checkpoints: at SQLite's default of 1 000 pages the commit that ran
        // one held up the messages behind it for 10-20 ms (p99 at 1 000 msg/s with
        // durability os: 17.6 → 3.9-4.7 ms). A checkpoint thread of its own was tried: under
        // sustained load its passive checkpoints never let the WAL reset, and the WAL grew
        // without bound.
        conn.pragma_update(None, "wal_autocheckpoint", 100)
            .map_err(io)?;
        conn.execute_batch(include_str!("schema.sql")).map_err(io)?;
        rows::init_policies(&mut conn).map_err(io)?;
        let state = rows::load(&conn, limits).map_err(io)?;
        let state = Arc::new(Mutex::new(state));
        let waker = Arc::new(Waker::new());
        let (tx, rx) = mpsc::channel::<Job>();
        let metrics = StoreMetrics::new();
        let stall = Arc::new(Mutex::new(None));
        let waiters: Arc<Waiters> = Arc::default();
        let asked = Arc::new(Mutex::new(None));
        let thread = {
            let state = state.clone();
            let waker = waker.clone();
            let clock = clock.clone();
            let committed = Committed {
                metrics: metrics.clone(),
                synced: durability == Durability::Fsync,
                stall: stall.clone(),
                waiters: waiters.clone(),
                asked: asked.clone(),
            };
            std::thread::Builder::new()
                .name("c2d-hub-store".into())
                .spawn(move || writer(conn, rx, state, waker, clock, committed))
                .map_err(|e| StoreError::Io(e.to_string()))?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                jobs: Mutex::new(Some(tx)),
                metrics,
                state,
                waker,
                clock,
                thread: Mutex::new(Some(thread)),
                stall,
                waiters,
                asked,
            }),
        })
    }

    /// Runs `f` on the writer thread and answers once its changes are committed (and, with
    /// [`Durability::Fsync`], synced to disk).
    pub async fn exec<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut HubState, SystemTime) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let run = Box::new(move |state: &mut HubState, now| -> Reply {
            let r = f(state, now);
            Box::new(move |ok| {
                let _ = tx.send(if ok {
                    Ok(r)
                } else {
                    Err(StoreError::Io("the commit failed".into()))
                });
            })
        });
        self.submit(Job {
            run,
            within: Duration::ZERO,
        })?;
        rx.await.unwrap_or_else(|_| {
            Err(StoreError::Io(
                "the store stopped during the operation".into(),
            ))
        })
    }

    /// Runs `f` on the state at once, on the caller's thread, without waiting for a commit:
    /// for changes that recovery never needs, such as the lock a delivery takes (a hub that
    /// starts again has no receivers and loads every message unlocked). Rows `f` does change
    /// on the way (an expired message it met is dead-lettered) are written by the writer's
    /// next commit, which this asks for; a crash before it only means doing them again.
    pub fn apply<R>(&self, f: impl FnOnce(&mut HubState, SystemTime) -> R) -> R {
        let (r, changed, answerable) = {
            let mut st = self.lock();
            let r = f(&mut st, self.inner.clock.now());
            let changed = !st.journal.is_empty() || !st.wakeups.is_empty();
            (r, changed, std::mem::take(&mut st.answerable))
        };
        answer(&self.inner.waiters, answerable, true);
        if changed {
            self.nudge(LAZY_COMMIT);
        }
        r
    }

    /// Runs `f` on the state at once, on the caller's thread, and answers once what it changed
    /// is committed (its wake-ups go with that commit, as [`exec`](Self::exec)'s do). For
    /// settlements: a completion ends its message at once, so the send that waits for it is
    /// answered then, and the message's row, if it was never written, is not written at all.
    pub async fn apply_durably<R>(
        &self,
        f: impl FnOnce(&mut HubState, SystemTime) -> R,
    ) -> Result<R, StoreError> {
        let (r, changed, answerable) = {
            let mut st = self.lock();
            let before = st.journal.len();
            let r = f(&mut st, self.inner.clock.now());
            let changed = st.journal.len() != before || !st.wakeups.is_empty();
            (r, changed, std::mem::take(&mut st.answerable))
        };
        answer(&self.inner.waiters, answerable, true);
        if !changed {
            return Ok(r);
        }
        let (tx, rx) = oneshot::channel::<bool>();
        let run: Change = Box::new(move |_, _| {
            Box::new(move |ok| {
                let _ = tx.send(ok);
            })
        });
        self.submit(Job {
            run,
            within: Duration::ZERO,
        })?;
        committed(rx).await.map(|()| r)
    }

    /// Asks the writer for a commit within `within` of what the state's journal holds.
    fn nudge(&self, within: Duration) {
        let by = std::time::Instant::now() + within;
        {
            let mut asked = self.inner.asked.lock().unwrap_or_else(|e| e.into_inner());
            if asked.is_some_and(|t| t <= by) {
                // a commit at least as soon is coming, and takes the journal as it then is
                return;
            }
            *asked = Some(by);
        }
        // an empty job: the writer takes what the journal holds and the wake-ups
        let run: Change = Box::new(|_, _| Box::new(|_| {}));
        // a closed store has no writer: what changed stays in memory, as in a crash
        let _ = self.submit(Job { run, within });
    }

    /// Accepts `message` for `device` (or refuses it) at once, on the caller's thread, and
    /// wakes the device's receivers at once; answers once the message is on disk, or once
    /// it has been settled, if that comes first. So a message its device completes before the
    /// writer's next commit (up to [`GROUP_COMMIT`] away) never touches the disk; its send is
    /// answered by its completion (with its feedback record on disk first, if its ack asked
    /// for one). "Accepted" means on disk, or delivered and settled; a crash before either
    /// leaves the send unanswered, and its sender sends it again (at least once).
    pub async fn send(
        &self,
        device: &str,
        message: c2d::Message,
    ) -> Result<Result<u64, crate::state::SendError>, StoreError> {
        let (tx, rx) = oneshot::channel::<bool>();
        let (sent, wakeups) = {
            let mut st = self.lock();
            let earlier = std::mem::take(&mut st.wakeups);
            let sent = st.send(self.inner.clock.now(), device, message);
            // only the send's own wake-up goes now; the others wait for their commit
            let mine = std::mem::replace(&mut st.wakeups, earlier);
            if let Ok(seq) = sent {
                st.unanswered.insert(seq);
                // registered before the state is let go: nothing can settle it before
                self.inner
                    .waiters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(seq, tx);
            }
            (sent, mine)
        };
        if sent.is_err() {
            return Ok(sent);
        }
        for w in &wakeups {
            self.inner.waker.wake(w);
        }
        self.nudge(GROUP_COMMIT);
        if let (true, Ok(seq)) = (self.is_closed(), &sent) {
            // no writer to answer it (close answers those it finds; this one may have come
            // after): not accepted, unless the writer's last commit took it already
            let waiter = self
                .inner
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(seq);
            if waiter.is_some() {
                return Err(StoreError::Closed);
            }
        }
        committed(rx).await.map(|()| sent)
    }

    fn is_closed(&self) -> bool {
        self.inner
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Hands `job` to the writer thread.
    fn submit(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.inner.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let sender = jobs.as_ref().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)
    }

    /// Reads the state without going through the writer (it may include changes whose
    /// commit is still under way).
    pub fn read<R>(&self, f: impl FnOnce(&HubState) -> R) -> R {
        f(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes waiters for devices and feedback.
    pub fn waker(&self) -> &Waker {
        &self.inner.waker
    }

    /// The writer's measures.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.inner.metrics
    }

    /// The hub's clock.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// The hub's clock, ctx.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Holds every commit for `duration` from now, as a slow disk would (a fault): sends
    /// wait for their answer, nothing is lost. Zero ends a stall.
    pub fn stall_commits(&self, duration: Duration) {
        let until = std::time::Instant::now() + duration;
        *self.inner.stall.lock().unwrap_or_else(|e| e.into_inner()) =
            (!duration.is_zero()).then_some(until);
    }

    /// How much longer commits are held, if they are.
    pub fn stalled_for(&self) -> Option<Duration> {
        let stall = *self.inner.stall.lock().unwrap_or_else(|e| e.into_inner());
        stall
            .map(|u| u.saturating_duration_since(std::time::Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// Stops the writer after the jobs already sent, and waits for it.
    pub fn close(&self) {
        self.inner
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        // sends the writer's last commit did not take: not accepted
        answer_all(&self.inner.waiters, false);
    }
}

fn io(e: rusqlite::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

/// Most jobs one commit takes.
const MAX_BATCH: usize = 512;

/// How long rows changed by jobs that wait for no commit (see [`Store::apply`]) may wait for
/// a job that does, to share its commit, before they are committed by themselves (also when
/// such jobs keep coming: a device draining its queue).
const LAZY_COMMIT: Duration = Duration::from_millis(20);

/// How long a sent message may wait for its commit ([`Store::send`]): time for a connected
/// device to receive and complete it first, so that its row is never written.
pub const GROUP_COMMIT: Duration = Duration::from_millis(2);

/// What the writer has run and not yet committed.
#[derive(Default)]
struct Uncommitted {
    journal: Vec<crate::state::Dirty>,
    replies: Vec<Reply>,
    wakeups: HashSet<Wakeup>,
}

/// Where the writer records its commits.
struct Committed {
    metrics: StoreMetrics,
    /// Whether a commit syncs (durability fsync).
    synced: bool,
    /// Commits wait until then (see [`Store::stall_commits`]).
    stall: Arc<Mutex<Option<std::time::Instant>>>,
    /// Senders waiting for their answer.
    waiters: Arc<Waiters>,
    /// The soonest commit asked for (see [`Inner::asked`]).
    asked: Arc<Mutex<Option<std::time::Instant>>>,
}

fn writer(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    state: Arc<Mutex<HubState>>,
    waker: Arc<Waker>,
    clock: Arc<dyn Clock>,
    committed: Committed,
) {
    let mut pending = Uncommitted::default();
    let mut commit_now = |pending: &mut Uncommitted| {
        commit(
            &mut conn,
            &state,
            &waker,
            &committed,
            std::mem::take(pending),
        )
    };
    // when the rows run so far are to be committed
    let mut due: Option<std::time::Instant> = None;
    loop {
        let first = match due {
            None => rx.recv().ok(),
            Some(due) => {
                match rx.recv_timeout(due.saturating_duration_since(std::time::Instant::now())) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        let Some(first) = first else {
            if due.is_none() {
                break; // the store closed
            }
            commit_now(&mut pending);
            due = None;
            continue;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut answerable = Vec::new();
        for job in batch {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let by = std::time::Instant::now() + job.within;
            due = Some(due.map_or(by, |d| d.min(by)));
            pending.replies.push((job.run)(&mut st, clock.now()));
            pending.wakeups.extend(st.wakeups.drain());
            pending.journal.append(&mut st.journal);
            answerable.append(&mut st.answerable);
        }
        answer(&committed.waiters, answerable, true);
        if pending.journal.is_empty() || due.is_some_and(|d| d <= std::time::Instant::now()) {
            commit_now(&mut pending);
            due = None;
        }
    }
    commit_now(&mut pending);
}

/// Writes the rows `u` names as they are now, in one transaction, then answers its jobs and
/// sends its wake-ups. A row changed by several jobs holds its last state, and a message sent
/// and completed before the commit is inserted and deleted in the same transaction.
fn commit(
    conn: &mut Connection,
    state: &Mutex<HubState>,
    waker: &Waker,
    committed: &Committed,
    u: Uncommitted,
) {
    let mut u = u;
    // the sends this commit answers: those whose message it writes, or whose message went
    // before its row was written, leaving a record this commit writes
    let mut answered = Vec::new();
    let result = (|| -> rusqlite::Result<()> {
        {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            // begun: a change from now on asks for a commit of its own (cleared before the
            // journal is taken, so that a change this commit does not take has asked again)
            *committed.asked.lock().unwrap_or_else(|e| e.into_inner()) = None;
            u.journal.append(&mut st.journal);
            u.wakeups.extend(st.wakeups.drain());
        }
        if u.journal.is_empty() {
            return Ok(());
        }
        // a stall asked for as a fault: this commit (and the jobs behind it) waits it out
        loop {
            let until = *committed.stall.lock().unwrap_or_else(|e| e.into_inner());
            match until.map(|u| u.saturating_duration_since(std::time::Instant::now())) {
                Some(left) if !left.is_zero() => {
                    std::thread::sleep(left.min(Duration::from_millis(100)))
                }
                _ => break,
            }
        }
        let started = std::time::Instant::now();
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        // everything changed until now, not only what the jobs run so far left: a send is
        // answered once every row its message's end changed is on disk
        u.journal.append(&mut st.journal);
        u.wakeups.extend(st.wakeups.drain());
        for d in &u.journal {
            if let crate::state::Dirty::NewMessage(_, seq) = d {
                if st.unanswered.remove(seq) {
                    answered.push(*seq);
                }
            }
        }
        // rows of messages sent and settled since the last commit are never written
        let live = rows::live(&st, &u.journal);
        if live.is_empty() {
            return Ok(());
        }
        let tx = conn.transaction()?;
        rows::write(&tx, &st, &live)?;
        drop(st);
        tx.commit()?;
        committed
            .metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        if committed.synced {
            committed.metrics.fsyncs.inc();
        }
        Ok(())
    })();
    let ok = match result {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "store commit failed; reloading the state from disk");
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            // every send still waiting had its message in this commit or after it, and the
            // state goes back to the disk's: none of them is accepted
            answer_all(&committed.waiters, false);
            let limits = st.limits.clone();
            match rows::load(conn, limits) {
                Ok(fresh) => {
                    // what the hub counted stays: it happened whether or not it is on disk
                    let stats = std::mem::take(&mut st.stats);
                    *st = fresh;
                    st.stats = stats;
                    st.stats.changed();
                }
                Err(e) => tracing::error!(error = %e, "reloading the store failed"),
            }
            false
        }
    };
    answer(&committed.waiters, answered, ok);
    for reply in u.replies {
        reply(ok);
    }
    for w in &u.wakeups {
        waker.wake(w);
    }
}

/// Applies the time-driven rules (TTL, lock expiry, feedback batching) on time, whether or
/// not any device is connected: the hub runs this as a task of its own.
pub(crate) async fn apply_time_rules(store: Store) {
    const MAX_NAP: Duration = Duration::from_millis(250);
    let mut jumps = store.clock().jumps();
    loop {
        let now = store.now();
        let due = store.read(|s| s.next_deadline()).is_some_and(|d| d <= now);
        if due {
            match store.exec(|s, now| s.sweep(now)).await {
                Ok(()) => continue,
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
        crate::clock::nap(&mut jumps, MAX_NAP).await;
    }
}

/// What `c2d hub info` shows of a data directory, read without starting a hub.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The host name connection strings use.
    pub host_name: String,
    /// The shared access policies.
    pub policies: Vec<crate::state::registry::Policy>,
    /// Path of the CA certificate.
    pub ca_file: std::path::PathBuf,
}

impl Summary {
    /// The connection string of a policy.
    pub fn connection_string(&self, policy: &str) -> Option<String> {
        self.policies
            .iter()
            .find(|p| p.name == policy)
            .map(|p| p.connection_string(&self.host_name))
    }
}

/// Reads a data directory's policies and CA, making them first if the directory is new.
pub fn summary(data_dir: &Path, host_name: &str) -> Result<Summary, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Io(e.to_string()))?;
    let tls = crate::tls::load_or_create(data_dir, host_name).map_err(StoreError::Io)?;
    let mut conn = Connection::open(data_dir.join(DB_FILE)).map_err(io)?;
    conn.execute_batch(include_str!("schema.sql")).map_err(io)?;
    rows::init_policies(&mut conn).map_err(io)?;
    Ok(Summary {
        host_name: host_name.to_string(),
        policies: rows::load_policies(&conn).map_err(io)?,
        ca_file: tls.ca_path,
    })
}

/// Reads the policies and CA of a hub's existing data directory without changing anything in
/// it (a running hub may own it); `None` when the directory holds no hub.
pub fn read_summary(data_dir: &Path, host_name: &str) -> Result<Option<Summary>, StoreError> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(io)?;
    Ok(Some(Summary {
        host_name: host_name.to_string(),
        policies: rows::load_policies(&conn).map_err(io)?,
        ca_file: data_dir.join(crate::tls::CA_FILE),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, SystemClock};

    fn open(dir: &Path) -> Store {
        Store::open(
            &dir.join("hub.db"),
            Limits::default(),
            Durability::Fsync,
            Arc::new(SystemClock),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn committed_and_applied_changes_are_both_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let put = |id: &'static str| {
            move |s: &mut HubState, now| {
                s.put_device(now, id, c2d::Device::new_sas(id), None)
                    .unwrap();
            }
        };
        // alternating, so that the writer switches between FULL and NORMAL both ways
        store.exec(put("a")).await.unwrap();
        store.apply(put("b"));
        store.exec(put("c")).await.unwrap();
        store.apply(put("d"));
        store.close();
        let store = open(dir.path());
        for id in ["a", "b", "c", "d"] {
            assert!(
                store.read(|s| s.registry.device(id).is_some()),
                "device {id} lost"
            );
        }
        store.close();
    }

    /// A store with device `dev`.
    async fn with_device(dir: &Path) -> Store {
        let store = open(dir);
        store
            .exec(|s, now| {
                s.put_device(now, "dev", c2d::Device::new_sas("dev"), None)
                    .unwrap()
            })
            .await
            .unwrap();
        store
    }

    /// A store with device `dev`, its commits held (a slow disk), and what the store has
    /// synced so far.
    async fn stalled_with_device(dir: &Path) -> (Store, u64) {
        let store = with_device(dir).await;
        store.stall_commits(Duration::from_secs(30));
        let synced = store.metrics().fsyncs.get();
        (store, synced)
    }

    /// Receives `dev`'s next message and settles it, in memory, as a device's PUBACK does.
    async fn receive_and_settle(store: &Store, how: crate::state::Settlement) {
        let delivery = loop {
            if let Some(d) = store.apply(|s, now| s.receive(now, "dev", 1)) {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        store
            .apply(|s, now| s.settle(now, "dev", delivery.lock_token, how))
            .unwrap();
    }

    fn rows(dir: &Path, table: &str) -> i64 {
        let conn = Connection::open(dir.join("hub.db")).unwrap();
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_message_completed_before_its_commit_is_answered_and_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let (store, synced) = stalled_with_device(dir.path()).await;
        let sending = tokio::spawn({
            let store = store.clone();
            async move { store.send("dev", c2d::Message::new(b"x".to_vec())).await }
        });
        // delivered before it is on disk (the commits are held for 30 s), completed, and the
        // send answered by the completion
        receive_and_settle(&store, crate::state::Settlement::Complete).await;
        let seq = tokio::time::timeout(Duration::from_secs(10), sending)
            .await
            .expect("the send waited for the stalled commit")
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(seq > 0);
        store.stall_commits(Duration::ZERO);
        store.close();
        assert_eq!(rows(dir.path(), "messages"), 0);
        assert_eq!(store.metrics().fsyncs.get(), synced, "a commit was synced");
    }

    #[tokio::test]
    async fn a_send_whose_message_left_a_record_is_answered_once_the_record_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = stalled_with_device(dir.path()).await;
        let message = c2d::Message::new(b"x".to_vec()).ack(c2d::Ack::Full);
        let mut sending = tokio::spawn({
            let store = store.clone();
            async move { store.send("dev", message).await }
        });
        receive_and_settle(&store, crate::state::Settlement::Reject).await;
        // the Rejected record is not on disk yet: the send waits for it
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut sending)
                .await
                .is_err(),
            "answered before its feedback record was written"
        );
        store.stall_commits(Duration::ZERO);
        tokio::time::timeout(Duration::from_secs(10), sending)
            .await
            .expect("not answered after the commit")
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(rows(dir.path(), "feedback_records"), 1);
        assert_eq!(rows(dir.path(), "messages"), 0);
        store.close();
    }

    #[tokio::test]
    async fn a_send_to_a_closed_store_is_refused_not_left_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let store = with_device(dir.path()).await;
        store.close();
        let sent = tokio::time::timeout(
            Duration::from_secs(10),
            store.send("dev", c2d::Message::new(b"x".to_vec())),
        )
        .await
        .expect("a send to a closed store waited");
        assert_eq!(sent, Err(StoreError::Closed));
    }

    #[tokio::test]
    async fn a_message_nobody_takes_is_answered_once_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = with_device(dir.path()).await;
        for _ in 0..3 {
            store
                .send("dev", c2d::Message::new(b"x".to_vec()))
                .await
                .unwrap()
                .unwrap();
        }
        // answered: on disk, seen by another connection at once
        assert_eq!(rows(dir.path(), "messages"), 3);
        store.close();
    }

    #[tokio::test]
    async fn applied_changes_are_committed_while_more_keep_coming() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let put = |id: String| {
            move |s: &mut HubState, now| {
                s.put_device(now, &id, c2d::Device::new_sas(&id), None)
                    .unwrap()
            }
        };
        let first_on_disk = || {
            let conn = Connection::open(dir.path().join("hub.db")).unwrap();
            conn.query_row(
                "SELECT COUNT(*) FROM devices WHERE id = 'lazy-0'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                == 1
        };
        // changes no answer waits for, every 2 ms (a device draining its queue): the first
        // is on disk, seen by another connection, within the lazy window and not only when
        // they stop or the store closes
        let started = std::time::Instant::now();
        let mut i = 0;
        while !first_on_disk() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "not committed after {i} more changes"
            );
            store.apply(put(format!("lazy-{i}")));
            i += 1;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        store.close();
    }
}
