#!/usr/bin/env bash
# `npm pack` of bindings-node, installed into fresh empty projects the way a user installs a
# downloaded tarball, then the typed test (compiled by test.sh into target/node-typed) run
# against each installation:
#   1. the tarball of this built checkout carries the addon for this platform: installed with
#      npm's scripts off (as npm 12 does for a package whose script nobody approved) it works
#      with no Rust at all;
#   2. installed with its script, the script sees that prebuilt addon and builds nothing;
#   3. a tarball of the sources alone (C2D_NODE_PREBUILT=0): npm builds the addon from the
#      engine's sources it carries (dev profile, in the workspace's target dir so that only the
#      c2d crates compile again).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -e "$root/bindings-node/c2d.node" ] || { echo "node-pack-test: build the addon first (scripts/build.js)" >&2; exit 1; }

pack() { # destination dir, env...
    mkdir -p "$1"
    (cd "$root/bindings-node" && env "${@:2}" npm pack --silent --pack-destination "$1") >/dev/null
    [ ! -e "$root/bindings-node/native" ] && [ ! -e "$root/bindings-node/prebuilds" ] ||
        { echo "npm pack left bindings-node/native or prebuilds behind" >&2; exit 1; }
    ls "$1"/c2d-*.tgz
}
project() { # name: an empty project
    mkdir "$work/$1"
    echo '{ "name": "tarball-test", "private": true }' >"$work/$1/package.json"
}
check() { # project name
    (cd "$work/$1" && node -e "require('c2d')" &&
        node --input-type=module -e "import { DeviceClient } from 'c2d'; if (typeof DeviceClient !== 'function') process.exit(1)")
    NODE_PATH=$work/$1/node_modules node "$root/target/node-typed/typed.js"
}

tarball=$(pack "$work/packed-with-addon")
echo "node: $(basename "$tarball") with the prebuilt addon ($(du -k "$tarball" | cut -f1) KiB)"
tar -tzf "$tarball" >"$work/listing"
grep -q '^package/prebuilds/.*/c2d.node$' "$work/listing" || { echo "no prebuilt addon in the tarball" >&2; exit 1; }

echo "node: installing it with scripts off and no cargo"
project no-scripts
(cd "$work/no-scripts" && PATH=/usr/bin:/bin CARGO=/bin/false \
    npm install --no-audit --no-fund --ignore-scripts "$tarball" >/dev/null)
check no-scripts

echo "node: installing it with its script, which must build nothing"
project scripts
(cd "$work/scripts" && CARGO=/bin/false \
    npm install --no-audit --no-fund --foreground-scripts "$tarball" 2>&1) | tee "$work/scripts.log" | grep '^c2d:' || true
grep -q 'using the prebuilt addon' "$work/scripts.log" || { echo "the install script did not take the prebuilt addon" >&2; exit 1; }
check scripts

tarball=$(pack "$work/packed-sources" C2D_NODE_PREBUILT=0)
echo "node: installing $(basename "$tarball") of the sources alone ($(du -k "$tarball" | cut -f1) KiB), built by its script"
tar -tzf "$tarball" >"$work/listing"
! grep -q '^package/prebuilds/' "$work/listing" || { echo "C2D_NODE_PREBUILT=0 packed an addon" >&2; exit 1; }
project sources
(cd "$work/sources" && CARGO_TARGET_DIR=$root/target C2D_NODE_PROFILE=dev \
    npm install --no-audit --no-fund --foreground-scripts "$tarball" 2>&1 | grep -v '^ *Compiling ')
check sources
