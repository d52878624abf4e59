#!/usr/bin/env bash
# The hub's layers (hub/src/lib.rs lists them): every import points down. Fails, naming the
# line, when a module imports one of the modules it must not reach:
#   the protocols (mqtt/, amqp/, http/), metrics, context, sessions, auth/, store/, state/
#     never import local_hub or listener (only local_hub wires the hub together);
#   context and sessions import no protocol and not metrics;
#   auth/ imports no more than state/; state/ imports nothing of the crate but itself;
#   faults.rs imports no protocol; throttle.rs and fault_state.rs import nothing of the crate.
set -euo pipefail
cd "$(dirname "$0")/../hub/src"
found=0
forbid() { # description, pattern, paths...
    local what=$1 pattern=$2; shift 2
    local lines
    lines=$(grep -rnE "$pattern" "$@" --include=*.rs | grep -vE "${allow:-^$}" || true)
    if [ -n "$lines" ]; then
        echo "$lines"
        echo "hub layers: $what" >&2
        found=1
    fi
}
# `crate::x` in a use or a path, or `use x` of a top-level module through `super::` from a
# child module
modules='(local_hub|listener)'
forbid "only local_hub.rs imports the listener, and nothing imports local_hub" \
    "crate::$modules\b" mqtt amqp http metrics.rs context.rs sessions.rs auth store state config.rs \
    data_dir.rs tls.rs clock.rs throttle.rs faults.rs fault_state.rs
forbid "faults.rs imports no protocol and not metrics" "crate::(mqtt|amqp|http|metrics)\b" faults.rs
forbid "context and sessions import no protocol, and not metrics" \
    "crate::(mqtt|amqp|http|metrics)\b" context.rs sessions.rs
forbid "auth imports no more than state" \
    "crate::(mqtt|amqp|http|metrics|context|sessions|store|config|tls|data_dir)\b" auth
allow='crate::state::' forbid "state is pure: it imports nothing of the crate but itself, and no tokio" \
    "crate::[a-z_]+|tokio::" state
forbid "throttle.rs and fault_state.rs import nothing of the crate" "crate::[a-z_]+" throttle.rs fault_state.rs
[ "$found" = 0 ] && echo "hub layers: every import points down"
exit "$found"
