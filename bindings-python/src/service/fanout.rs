//! One message to many devices: the engine's `send_many`, its results taken in batches
//! (one crossing into Python for every batch of results ready together).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyTuple};

use crate::error::to_py;
use crate::message::OutgoingMessage;
use crate::runtime::{awaitable, wait};
use crate::service::client::SentMessage;

/// Device ids taken from a Python iterator, a batch at a time with the GIL; the iterator's
/// exception, if it raises, ends the ids and is kept to be raised at the end of the run.
struct PythonIds {
    iterator: Py<PyIterator>,
    buffer: VecDeque<String>,
    failed: Arc<Mutex<Option<PyErr>>>,
    done: bool,
}

/// Ids taken from the iterator at a time.
const ID_BATCH: usize = 256;

impl Iterator for PythonIds {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.buffer.is_empty() && !self.done {
            Python::attach(|py| {
                let mut iterator = self.iterator.bind(py).clone();
                while self.buffer.len() < ID_BATCH {
                    match iterator.next() {
                        Some(Ok(id)) => match id.extract::<String>() {
                            Ok(id) => self.buffer.push_back(id),
                            Err(_) => {
                                let e = pyo3::exceptions::PyTypeError::new_err(format!(
                                    "a device id is a str, not {}",
                                    id.get_type()
                                        .name()
                                        .map_or_else(|_| "?".into(), |n| n.to_string())
                                ));
                                self.fail(e);
                                break;
                            }
                        },
                        Some(Err(e)) => {
                            self.fail(e);
                            break;
                        }
                        None => {
                            self.done = true;
                            break;
                        }
                    }
                }
            });
        }
        self.buffer.pop_front()
    }
}

impl PythonIds {
    fn fail(&mut self, e: PyErr) {
        self.done = true;
        *self.failed.lock().expect("ids lock") = Some(e);
    }
}

/// One device's result: `(device_id, sent, error)`, one of the last two `None`.
struct Item(String, c2d::Result<c2d::SentMessage>);

impl<'py> IntoPyObject<'py> for Item {
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let (sent, error) = match self.1 {
            Ok(sent) => (Some(SentMessage { sent }), None),
            Err(e) => (None, Some(to_py(e))),
        };
        (self.0, sent, error).into_pyobject(py)
    }
}

/// A fan-out under way: its results in batches, its summary, and a way to stop it.
#[pyclass(module = "c2d._native", frozen)]
pub struct SendMany {
    run: Arc<tokio::sync::Mutex<c2d::SendMany>>,
    stopper: c2d::FanOutStopper,
    summary: Arc<Mutex<c2d::FanOutSummary>>,
    failed: Arc<Mutex<Option<PyErr>>>,
}

/// The summary as `(sent, {kind: count}, retried, throttled, elapsed seconds, stopped,
/// cancelled)`; `c2d.FanOutSummary` is made from it.
type Summary = (
    u64,
    Vec<(&'static str, u64)>,
    u64,
    u64,
    f64,
    Option<PyErr>,
    bool,
);

impl SendMany {
    /// Up to `max` results: waits for the first, takes the others that are ready; `done`
    /// once the run has ended, or the ids' iterator's exception then, if it raised one.
    fn batch(
        &self,
        max: usize,
    ) -> impl std::future::Future<Output = PyResult<(Vec<Item>, bool)>> + Send {
        let (run, summary, failed) = (self.run.clone(), self.summary.clone(), self.failed.clone());
        async move {
            let mut run = run.lock().await;
            let mut items = Vec::new();
            let mut done = false;
            match run.next().await {
                Some((id, r)) => items.push(Item(id, r)),
                None => done = true,
            }
            while !done && items.len() < max.max(1) {
                match run.next().now_or_never() {
                    Some(Some((id, r))) => items.push(Item(id, r)),
                    Some(None) => done = true,
                    None => break,
                }
            }
            *summary.lock().expect("summary lock") = run.summary();
            match done.then(|| failed.lock().expect("ids lock").take()) {
                Some(Some(e)) => Err(e),
                _ => Ok((items, done)),
            }
        }
    }
}

#[pymethods]
impl SendMany {
    /// Up to `max` results, `(device_id, sent, error)` each, and whether the run has ended.
    fn next_batch(&self, py: Python<'_>, max: usize) -> PyResult<(Vec<Item>, bool)> {
        wait(py, self.batch(max))?
    }

    /// [`next_batch`](Self::next_batch), awaitable.
    fn next_batch_async<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.batch(max))
    }

    /// Starts no new send; those in flight are still awaited and reported.
    fn stop(&self) {
        self.stopper.stop();
    }

    /// What the run did so far (final once it has ended).
    fn summary(&self) -> Summary {
        // the run's own when no batch holds it, else the one the last batch left
        let s = match self.run.try_lock() {
            Ok(run) => run.summary(),
            Err(_) => self.summary.lock().expect("summary lock").clone(),
        };
        (
            s.sent,
            s.failed.iter().map(|(k, n)| (k.name(), *n)).collect(),
            s.retried,
            s.throttled,
            s.elapsed.as_secs_f64(),
            s.stopped.map(to_py),
            s.cancelled,
        )
    }
}

impl SendMany {
    /// A run of `message` to the ids of a Python iterable (`ServiceClient.send_many`).
    pub(crate) fn start(
        client: &c2d::ServiceClient,
        devices: &Bound<'_, PyAny>,
        message: &OutgoingMessage,
        fan: c2d::FanOut,
    ) -> PyResult<SendMany> {
        let failed = Arc::new(Mutex::new(None));
        let ids = PythonIds {
            iterator: devices.try_iter()?.unbind(),
            buffer: VecDeque::new(),
            failed: failed.clone(),
            done: false,
        };
        let run = client
            .send_many(ids, message.0.clone(), fan)
            .map_err(to_py)?;
        Ok(SendMany {
            stopper: run.stopper(),
            summary: Arc::new(Mutex::new(run.summary())),
            run: Arc::new(tokio::sync::Mutex::new(run)),
            failed,
        })
    }
}
