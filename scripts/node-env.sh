#!/usr/bin/env bash
# A Node.js project with the c2d package installed the way users install it,
# `npm install ./bindings-node` (npm builds the addon from source); prints the project's
# node_modules on stdout (for NODE_PATH).
#
#   scripts/node-env.sh            target/node: the addon built with the dev profile
#                                  (shares the workspace's debug build; for the tests)
#   scripts/node-env.sh --release  target/node-release: a release build (benchmarks)
#
# npm links the folder, so the addon is built in bindings-node/c2d.node (cargo rebuilds only
# what changed) and the last call's profile is the one installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/target/node profile=dev
if [ "${1:-}" = --release ]; then dir=$root/target/node-release profile=release; fi
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{ "name": "c2d-node-env", "private": true }' >"$dir/package.json"
# --foreground-scripts: cargo's progress shows, and the build's errors if it fails
(cd "$dir" && C2D_NODE_PROFILE=$profile npm install --no-audit --no-fund --foreground-scripts \
    "$root/bindings-node") >&2
echo "$dir/node_modules"
