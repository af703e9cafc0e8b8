#!/usr/bin/env bash
# Every test cordon has, from a fresh clone: formatting, then the whole workspace's unit,
# integration and end-to-end tests (the real `cordon` binary, the simulated organization, the
# kill -9 crash test). Needs only cargo; nothing here reaches the network but crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo test --workspace --locked
