#!/usr/bin/env bash
# The whole test suite: unit, protocol and crash tests (cargo), then interop with the
# official Azure IoT SDKs (Python azure-iot-device, Node azure-iothub) on IoT Hub's ports.
# Installs what it needs by itself: the SDKs go into tests/interop/.deps (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p c2d-cli
cargo test --locked --workspace
tests/interop/run.sh
