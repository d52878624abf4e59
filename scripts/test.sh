#!/usr/bin/env bash
# The whole test suite: unit, protocol, scenario and crash tests (cargo), the C header check
# and the C tests (plain, valgrind, ASan), the example applications, then interop with the
# official Azure IoT SDKs on IoT Hub's ports.
# Installs what it needs by itself: the official SDKs (tests/interop/install.sh) into
# git-ignored folders under tests/interop/.
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
examples/run.sh
tests/interop/run.sh
