#!/usr/bin/env bash
# The whole test suite: unit, protocol, scenario and crash tests (cargo), the C header check
# and the C tests (plain, valgrind, ASan), the example applications, then interop with the
# official Azure IoT SDKs on IoT Hub's ports.
# Installs what it needs by itself: the SDKs go into tests/interop/.deps (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p c2d-cli -p c2d-ffi
cargo test --locked --workspace
make -s header
git diff --exit-code -- include/c2d.h ||
    { echo "include/c2d.h is not what ffi/ generates: run 'make header' and commit it" >&2; exit 1; }
tests/c/run.sh
examples/run.sh
tests/interop/run.sh
