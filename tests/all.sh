#!/usr/bin/env bash
# Every test of the product: the Rust workspace's (unit, property, end-to-end), then the Python
# client's against the same binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
bash python/test.sh
