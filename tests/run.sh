#!/usr/bin/env bash
# Every test cordon has, from a fresh clone: formatting, then the whole workspace's unit,
# integration and end-to-end tests (the real `cordon` binary, the simulated organization, the
# kill -9 crash test, and the AWS connectors against moto's AWS API emulator on 127.0.0.1).
#
# Installs what the tests need first: moto's server from PyPI into .venv (once; reused after).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export CORDON_MOTO_SERVER="$PWD/.venv/bin/moto_server"

cargo fmt --all -- --check
cargo test --workspace --locked
