//! Retry policies: the engine's, or a Python callable `(attempt, error) -> seconds | None`.

use std::time::Duration;

use pyo3::prelude::*;

use crate::error::to_py;
use crate::runtime::seconds;

/// How connecting and operations are retried after a transient error (errors retrying
/// cannot fix are never retried).
#[pyclass(module = "c2d._native", frozen)]
#[derive(Clone)]
pub struct RetryPolicy {
    pub(crate) policy: c2d::RetryPolicy,
    description: String,
}

#[pymethods]
impl RetryPolicy {
    /// Never retry.
    #[staticmethod]
    fn none() -> Self {
        RetryPolicy {
            policy: c2d::RetryPolicy::None,
            description: "RetryPolicy.none()".into(),
        }
    }

    /// The same wait every time; at most `max_retries` retries (`None`: no limit).
    #[staticmethod]
    #[pyo3(signature = (interval, max_retries = None))]
    fn fixed(interval: f64, max_retries: Option<u32>) -> PyResult<Self> {
        Ok(RetryPolicy {
            policy: c2d::RetryPolicy::Fixed {
                interval: seconds("interval", interval)?,
                max_attempts: max_retries,
            },
            description: format!("RetryPolicy.fixed({interval}, max_retries={max_retries:?})"),
        })
    }

    /// Waits that double from `initial` up to `max` seconds, each shortened by a random part
    /// of up to `jitter` (0 to 1) of itself; at most `max_retries` retries (`None`: no limit).
    /// The default policy.
    #[staticmethod]
    #[pyo3(signature = (initial = 0.1, max = 10.0, jitter = 0.25, max_retries = None))]
    fn exponential_backoff(
        initial: f64,
        max: f64,
        jitter: f64,
        max_retries: Option<u32>,
    ) -> PyResult<Self> {
        let (initial_d, max_d) = (seconds("initial", initial)?, seconds("max", max)?);
        Ok(RetryPolicy {
            policy: c2d::RetryPolicy::exponential(initial_d, max_d, jitter, max_retries)
                .map_err(to_py)?,
            description: format!(
                "RetryPolicy.exponential_backoff(initial={initial}, max={max}, jitter={jitter}, max_retries={max_retries:?})"
            ),
        })
    }

    /// A policy of your own: `decide(attempt, error)` is called before retry number
    /// `attempt` (1 for the first) after the transient `error` (a `c2d.C2DError`), and
    /// returns the seconds to wait, or `None` to give up. It runs on an engine thread: keep
    /// it quick. If it raises, the error is reported as unraisable and retrying stops.
    #[staticmethod]
    fn custom(decide: Py<PyAny>) -> Self {
        RetryPolicy {
            policy: custom(decide),
            description: "RetryPolicy.custom(…)".into(),
        }
    }

    fn __repr__(&self) -> String {
        self.description.clone()
    }
}

fn custom(decide: Py<PyAny>) -> c2d::RetryPolicy {
    c2d::RetryPolicy::custom(move |attempt, error| {
        Python::attach(|py| {
            let exception = to_py(error.clone()).into_value(py);
            let answer =
                decide
                    .call1(py, (attempt, exception))
                    .and_then(|wait| match wait.is_none(py) {
                        true => Ok(None),
                        false => {
                            let secs: f64 = wait.extract(py)?;
                            seconds("the retry callable's answer", secs).map(Some)
                        }
                    });
            answer.unwrap_or_else(|e| {
                e.write_unraisable(py, Some(decide.bind(py)));
                None::<Duration>
            })
        })
    })
}

/// The engine's policy for a `retry=` option: a [`RetryPolicy`] or a callable.
pub fn from_option(retry: &Bound<'_, PyAny>) -> PyResult<c2d::RetryPolicy> {
    if let Ok(policy) = retry.cast::<RetryPolicy>() {
        return Ok(policy.get().policy.clone());
    }
    if retry.is_callable() {
        return Ok(custom(retry.clone().unbind()));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "retry must be a c2d.RetryPolicy or a callable (attempt, error) -> seconds | None",
    ))
}
