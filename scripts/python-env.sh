#!/usr/bin/env bash
# A virtualenv with the c2d Python package installed the way users install it,
# `pip install ./bindings-python`, with its test tools; prints the venv's python on stdout.
#
#   scripts/python-env.sh            target/python: the engine built with the dev profile
#                                    (shares the workspace's debug build; for the tests)
#   scripts/python-env.sh --release  target/python-release: a release build (benchmarks)
#
# The venv is made once; the package is built and installed again on every call (cargo
# rebuilds only what changed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/target/python profile=dev
if [ "${1:-}" = --release ]; then venv=$root/target/python-release profile=release; fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
fi
# the test tools are pinned in pyproject.toml's `test` extra
MATURIN_PEP517_ARGS="--profile $profile" "$venv/bin/pip" install -q --disable-pip-version-check \
    "$root/bindings-python[test]" >&2
echo "$venv/bin/python"
