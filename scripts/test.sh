#!/usr/bin/env bash
# The whole test suite: unit, protocol, scenario and crash tests (cargo), the example
# applications, then interop with the official Azure IoT SDKs on IoT Hub's ports.
# Installs what it needs by itself: the SDKs go into tests/interop/.deps (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p c2d-cli
cargo test --locked --workspace
examples/run.sh
tests/interop/run.sh
