#!/usr/bin/env bash
# `npm pack` of bindings-node, installed into a fresh empty project the way a user installs a
# downloaded tarball: npm builds the addon from the engine's sources the tarball carries (dev
# profile, in the workspace's target dir so that only the c2d crates compile again), then the
# typed test (compiled by test.sh into target/node-typed) runs against that installation.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root/bindings-node" && npm pack --silent --pack-destination "$work") >/dev/null
tarball=$(ls "$work"/c2d-*.tgz)
echo "node: installing $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB) into an empty project"
mkdir "$work/project"
echo '{ "name": "tarball-test", "private": true }' >"$work/project/package.json"
(cd "$work/project" && CARGO_TARGET_DIR=$root/target C2D_NODE_PROFILE=dev \
    npm install --no-audit --no-fund --foreground-scripts "$tarball" 2>&1 | grep -v '^ *Compiling ')
[ ! -e "$root/bindings-node/native" ] || { echo "npm pack left bindings-node/native behind" >&2; exit 1; }
(cd "$work/project" && node -e "require('c2d')" &&
    node --input-type=module -e "import { DeviceClient } from 'c2d'; if (typeof DeviceClient !== 'function') process.exit(1)")
NODE_PATH=$work/project/node_modules node "$root/target/node-typed/typed.js"
