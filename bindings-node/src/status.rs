//! Connection status: the current one, and a stream of changes.

use std::sync::Arc;

use napi::bindgen_prelude::Object;
use napi::{Env, Result};
use napi_derive::napi;
use tokio::sync::Mutex;

use c2d::ConnectionStatus;

use crate::runtime::promise;

/// A client's connection status.
#[napi(object)]
pub struct Status {
    /// `connected`, `reconnecting` or `disconnected`.
    pub state: String,
    /// Why, when disconnected.
    pub reason: Option<String>,
}

/// The JavaScript form of a status.
pub fn status(s: ConnectionStatus) -> Status {
    let (state, reason) = match s {
        ConnectionStatus::Connected => ("connected", None),
        ConnectionStatus::Reconnecting => ("reconnecting", None),
        ConnectionStatus::Disconnected(why) => ("disconnected", Some(why)),
    };
    Status {
        state: state.into(),
        reason,
    }
}

/// The status changes of one client, from the moment this was made, up to the one that
/// disconnects it for good (closed, or given up on): no change follows that one.
#[napi]
pub struct StatusChanges {
    /// The receiver, and whether the last change came.
    receiver: Arc<Mutex<(c2d::StatusReceiver, bool)>>,
}

impl StatusChanges {
    /// Follows `receiver`.
    pub fn new(receiver: c2d::StatusReceiver) -> Self {
        let over = matches!(receiver.current(), ConnectionStatus::Disconnected(_));
        StatusChanges {
            receiver: Arc::new(Mutex::new((receiver, over))),
        }
    }
}

#[napi]
impl StatusChanges {
    /// The next change; `null` after the disconnected one.
    #[napi(ts_return_type = "Promise<Status | null>")]
    pub fn next<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let receiver = self.receiver.clone();
        promise(env, async move {
            let mut guard = receiver.lock().await;
            let (receiver, over) = &mut *guard;
            if *over {
                return Ok(None);
            }
            let next = receiver.recv().await;
            *over = matches!(next, None | Some(ConnectionStatus::Disconnected(_)));
            Ok(next.map(status))
        })
    }
}
