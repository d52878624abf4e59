//! Waiting on the engine's runtime from Python: blocking calls release the GIL and wake every
//! 100 ms to let Ctrl-C through; async calls become asyncio awaitables.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{intern, IntoPyObjectExt};

use crate::error::to_py;

/// How often a blocking wait looks for a signal (Ctrl-C) from Python.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Runs `future` on the engine's runtime with the GIL released, until it ends, `timeout`
/// passes (`Ok(None)`), or a signal handler raises (its exception, and the future is dropped,
/// which cancels the operation).
pub fn wait_for<F>(
    py: Python<'_>,
    timeout: Option<Duration>,
    future: F,
) -> PyResult<Option<F::Output>>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = c2d::runtime::runtime().map_err(to_py)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut future = std::pin::pin!(future);
    loop {
        let slice = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_CHECK),
            None => SIGNAL_CHECK,
        };
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(slice, future.as_mut()).await })
        });
        match step {
            Ok(output) => return Ok(Some(output)),
            Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(None),
            Err(_) => py.check_signals()?,
        }
    }
}

/// Runs `future` to its end (see [`wait_for`]).
pub fn wait<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    wait_for(py, None, future)?.ok_or_else(|| {
        to_py(c2d::Error::new(
            c2d::ErrorKind::Internal,
            "a wait without a deadline ended",
        ))
    })
}

/// An asyncio awaitable of `future`, run on the engine's runtime; cancelling the awaiting
/// task drops the future (the engine's calls are cancel safe: a receive takes no message).
///
/// The result reaches the event loop through its [`LoopWaker`]: one wake-up of the loop for
/// every batch of awaitables that finish together, and no GIL on the engine's threads (a
/// future per call settled with `call_soon_threadsafe`, pyo3-async-runtimes' way, takes the
/// GIL and a blocking-pool thread per result).
pub fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let runtime = c2d::runtime::runtime().map_err(to_py)?;
    let event_loop = running_loop(py)?;
    let waker = LoopWaker::of(py, &event_loop)?;
    let py_future = event_loop.call_method0(intern!(py, "create_future"))?;
    let pending = Pending {
        waker,
        future: Some(py_future.clone().unbind()),
    };
    let task = runtime.spawn(async move {
        let result = future.await;
        pending.finish(Box::new(move |py| result.and_then(|v| v.into_py_any(py))));
    });
    py_future.call_method1(
        intern!(py, "add_done_callback"),
        (Cancel(task.abort_handle()),),
    )?;
    Ok(py_future)
}

/// Makes an awaitable's result on the loop's thread.
type MakeResult = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// An awaitable's future while its work runs. Dropped unfinished (the work panicked, or was
/// aborted because the future was cancelled), it still hands the future an error, so that
/// nothing awaits for ever (a cancelled future, done already, ignores it).
struct Pending {
    waker: Arc<LoopWaker>,
    future: Option<Py<PyAny>>,
}

impl Pending {
    fn finish(mut self, make: MakeResult) {
        if let Some(future) = self.future.take() {
            self.waker.finish(future, make);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            self.waker.finish(
                future,
                Box::new(|_| {
                    Err(PyRuntimeError::new_err(
                        "c2d: the engine's work for this call ended without a result",
                    ))
                }),
            );
        }
    }
}

/// `asyncio.get_running_loop()`.
fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET_RUNNING_LOOP
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
        })?
        .bind(py)
        .call0()
}

/// An event loop's side of the awaitables: the engine's threads queue what finished and
/// write a byte to a socket the loop watches (`add_reader`), once per batch; the loop's
/// [`Drain`] then sets every result.
struct LoopWaker {
    /// What finished since the last drain, with its future.
    finished: Mutex<Vec<(Py<PyAny>, MakeResult)>>,
    /// The socket's end the engine writes to.
    wake: UnixStream,
}

thread_local! {
    /// The wakers of the event loops run on this thread (one, as a rule), with their loops.
    static WAKERS: RefCell<Vec<(Py<PyAny>, Arc<LoopWaker>)>> = const { RefCell::new(Vec::new()) };
}

impl LoopWaker {
    /// The waker of `event_loop`, made (and its socket given to the loop) on first use.
    fn of(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopWaker>> {
        WAKERS.with(|wakers| {
            let mut wakers = wakers.borrow_mut();
            if let Some((_, w)) = wakers.iter().find(|(l, _)| l.bind(py).is(event_loop)) {
                return Ok(w.clone());
            }
            // the loops closed since are forgotten (their sockets went with them)
            wakers.retain(|(l, _)| {
                !l.bind(py)
                    .call_method0(intern!(py, "is_closed"))
                    .and_then(|c| c.is_truthy())
                    .unwrap_or(true)
            });
            let (wake, watch) = UnixStream::pair()
                .map_err(|e| PyRuntimeError::new_err(format!("c2d: a socket pair: {e}")))?;
            wake.set_nonblocking(true)
                .and_then(|()| watch.set_nonblocking(true))
                .map_err(|e| PyRuntimeError::new_err(format!("c2d: a socket pair: {e}")))?;
            let waker = Arc::new(LoopWaker {
                finished: Mutex::new(Vec::new()),
                wake,
            });
            let fd = watch.as_raw_fd();
            let drain = Drain {
                waker: waker.clone(),
                watch,
            };
            event_loop.call_method1(intern!(py, "add_reader"), (fd, drain))?;
            wakers.push((event_loop.clone().unbind(), waker.clone()));
            Ok(waker)
        })
    }

    /// Queues a finished awaitable; the first of a batch wakes the loop.
    fn finish(&self, future: Py<PyAny>, make: MakeResult) {
        let first = {
            let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
            finished.push((future, make));
            finished.len() == 1
        };
        if first {
            // a full socket already wakes the loop; a closed one has no loop to wake
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// The loop's reader of its [`LoopWaker`]'s socket: sets the results of what finished.
#[pyclass(module = "c2d._native", frozen)]
struct Drain {
    waker: Arc<LoopWaker>,
    watch: UnixStream,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        let mut bytes = [0u8; 256];
        while matches!((&self.watch).read(&mut bytes), Ok(n) if n > 0) {}
        let batch = std::mem::take(
            &mut *self
                .waker
                .finished
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (future, make) in batch {
            let future = future.bind(py);
            // a cancelled future is done: its result goes nowhere
            if future
                .call_method0(intern!(py, "done"))
                .and_then(|d| d.is_truthy())
                .unwrap_or(true)
            {
                continue;
            }
            let set = match make(py) {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
                Err(e) => future.call_method1(intern!(py, "set_exception"), (e.into_value(py),)),
            };
            if let Err(e) = set {
                e.write_unraisable(py, Some(future));
            }
        }
    }
}

/// An awaitable's done callback: a cancelled awaitable drops its work on the engine.
#[pyclass(module = "c2d._native", frozen)]
struct Cancel(tokio::task::AbortHandle);

#[pymethods]
impl Cancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future
            .call_method0(intern!(future.py(), "cancelled"))?
            .is_truthy()?
        {
            self.0.abort();
        }
        Ok(())
    }
}

/// Seconds from Python as a duration: finite and not negative.
pub fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    c2d::duration::seconds(what, value).map_err(to_py)
}

/// Seconds from Python, if given.
pub fn opt_seconds(what: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    c2d::duration::opt_seconds(what, value).map_err(to_py)
}
