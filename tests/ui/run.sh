#!/usr/bin/env bash
# The hub's live page in a real browser: Debian's Chromium (installed here if missing),
# driven by playwright-core (tests/ui/package-lock.json), against a hub the test starts with
# the c2d Node.js package. Screenshots go to target/ui/.
#
#   tests/ui/run.sh     uses $C2D_NODE_MODULES if set (scripts/test.sh sets it), otherwise
#                       installs the c2d package with scripts/node-env.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v chromium >/dev/null; then
    echo "tests/ui: installing Chromium from Debian's packages" >&2
    sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi
(cd "$root/tests/ui" && npm ci --no-audit --no-fund --silent)
node_modules=${C2D_NODE_MODULES:-}
[ -n "$node_modules" ] || node_modules=$("$root/scripts/node-env.sh")
mkdir -p "$root/target/ui"
cd "$root/tests/ui"
NODE_PATH=$node_modules C2D_UI_SCREENSHOTS=$root/target/ui node --test --test-concurrency=1 page.test.js
