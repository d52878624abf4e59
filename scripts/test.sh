#!/usr/bin/env bash
# The whole test suite: unit, protocol, scenario and crash tests (cargo), the C header check
# and the C tests (plain, valgrind, ASan), the Python package's tests and type check, the
# Node.js package's tests and type check, the example applications, the hub's live page in a
# real browser, then interop with the official Azure IoT SDKs on IoT Hub's ports. Installs what it needs by itself: the c2d Python
# package into target/python (scripts/python-env.sh), the c2d Node.js package into
# target/node (scripts/node-env.sh) and its build tools into bindings-node/node_modules,
# Chromium (Debian's) and playwright-core into tests/ui/node_modules (tests/ui/run.sh), and
# the official SDKs (tests/interop/install.sh) into git-ignored folders under tests/interop/.
set -euo pipefail
cd "$(dirname "$0")/.."
# Users only ever have the repository: nothing in it may read or link a folder beside it, nor
# cite the design notes that live there. (The pattern is split so that this line is no match.)
outside='\.\./'"shared|(PROTOCOL|DESIGN|INTEROP-FINDINGS)"'\.md'
if git grep --untracked -n -I -E "$outside"; then
    echo "the files above refer to something outside the repository" >&2
    exit 1
fi
scripts/hub-layers.sh
cargo build --locked -p c2d-cli -p c2d-ffi
cargo test --locked --workspace
# the authorization matrix once more, its case counts printed (SAS tokens, then X.509)
cargo test --locked -q -p c2d-hub --test auth_matrix -- --nocapture --test-threads=1 | grep -o 'auth matrix.*'
make -s header
git diff --exit-code -- include/c2d.h ||
    { echo "include/c2d.h is not what ffi/ generates: run 'make header' and commit it" >&2; exit 1; }
tests/c/run.sh
# the Python package, installed by pip as users install it, and its own tests; its blocking
# API (_sync.py) is written from its asyncio API (aio.py) by scripts/python-sync.py
scripts/python-sync.py --check
C2D_PYTHON=$(scripts/python-env.sh)
export C2D_PYTHON
(cd bindings-python && "$C2D_PYTHON" -m pytest -q -p no:cacheprovider tests)
"$C2D_PYTHON" -m mypy --strict --no-incremental bindings-python/python/c2d bindings-python/tests examples/python
# the Node.js package: the addon (and its declarations, native.d.ts) built, index.ts compiled,
# both compared with what is committed; its tests; then `npm pack`, installed from the tarball
# into a fresh project (the addon built from the sources inside) and the typed test run there
(cd bindings-node && npm ci --ignore-scripts --no-audit --no-fund)
C2D_NODE_PROFILE=dev C2D_NODE_TYPES=1 node bindings-node/scripts/build.js
(cd bindings-node && npx tsc -p tsconfig.json && npx tsc -p test/tsconfig.json)
git diff --exit-code -- bindings-node/native.d.ts bindings-node/index.js bindings-node/index.d.ts || {
    echo "bindings-node: the declarations or index.js differ from what src/ and index.ts make: run" \
        "'C2D_NODE_TYPES=1 node scripts/build.js && npx tsc -p tsconfig.json' there and commit" >&2
    exit 1
}
(cd bindings-node && node --test --test-concurrency=1 test/*.test.js)
scripts/node-pack-test.sh
C2D_NODE_MODULES=$(scripts/node-env.sh)
export C2D_NODE_MODULES
examples/run.sh
# the hub's live page in headless Chromium (installed from Debian's packages if missing)
tests/ui/run.sh
tests/interop/run.sh
