#!/usr/bin/env bash
# The Python client's tests, against the Rust binaries of this workspace (built if missing).
# Installs the client with its test extra into a virtual environment under target/, with one
# `pip install` of this folder, as a user would; every test runs on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# The client as the code is now (its version number does not change with every edit), then
# what its tests need.
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./python
"$venv/bin/pip" install -q --disable-pip-version-check "./python[test]"
cargo build --workspace --bins --quiet
LC_BIN_DIR="$PWD/target/debug" "$venv/bin/python" -m pytest -q python/tests "$@"
