#!/usr/bin/env bash
# The whole test suite: unit, protocol, scenario and crash tests (cargo), the C header check
# and the C tests (plain, valgrind, ASan), the Python package's tests and type check, the
# example applications, then interop with the official Azure IoT SDKs on IoT Hub's ports.
# Installs what it needs by itself: the c2d Python package into target/python
# (scripts/python-env.sh) and the official SDKs (tests/interop/install.sh) into git-ignored
# folders under tests/interop/.
set -euo pipefail
cd "$(dirname "$0")/.."
# Users only ever have the repository: nothing in it may read or link a folder beside it, nor
# cite the design notes that live there. (The pattern is split so that this line is no match.)
outside='\.\./'"shared|(PROTOCOL|DESIGN|INTEROP-FINDINGS)"'\.md'
if git grep --untracked -n -I -E "$outside"; then
    echo "the files above refer to something outside the repository" >&2
    exit 1
fi
cargo build --locked -p c2d-cli -p c2d-ffi
cargo test --locked --workspace
make -s header
git diff --exit-code -- include/c2d.h ||
    { echo "include/c2d.h is not what ffi/ generates: run 'make header' and commit it" >&2; exit 1; }
tests/c/run.sh
# the Python package, installed by pip as users install it, and its own tests
C2D_PYTHON=$(scripts/python-env.sh)
export C2D_PYTHON
(cd bindings-python && "$C2D_PYTHON" -m pytest -q -p no:cacheprovider tests)
"$C2D_PYTHON" -m mypy --strict --no-incremental bindings-python/python/c2d bindings-python/tests examples/python
examples/run.sh
tests/interop/run.sh
