#!/usr/bin/env bash
# Installs the official Azure IoT SDKs the interop tests and benchmarks run, at the versions
# pinned here, from the package registries: the Python SDKs into a virtualenv,
# tests/interop/.deps/venv (python/requirements.txt), and the Node SDKs into
# tests/interop/node/node_modules (node/package-lock.json, `npm ci`). Both are git-ignored and
# installed again only when their pins change.
#
#   tests/interop/install.sh [python] [node]      (both when neither is named)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$here/.deps/venv

install_python() {
    local pins=$here/python/requirements.txt stamp=$venv/.c2d-requirements.txt
    cmp -s "$pins" "$stamp" 2>/dev/null && return 0
    echo "interop: installing the Python SDKs into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$pins"
    cp "$pins" "$stamp"
}

install_node() {
    local lock=$here/node/package-lock.json stamp=$here/node/node_modules/.c2d-package-lock.json
    cmp -s "$lock" "$stamp" 2>/dev/null && return 0
    echo "interop: installing the Node SDKs into $here/node/node_modules"
    (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$lock" "$stamp"
}

[ $# -gt 0 ] || set -- python node
for part in "$@"; do
    case $part in
        python|node) "install_$part" ;;
        *) echo "usage: $0 [python] [node]" >&2; exit 2 ;;
    esac
done
