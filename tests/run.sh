#!/usr/bin/env bash
# Every test cordon has, from a fresh clone: formatting and clippy, then the whole workspace's unit,
# integration and end-to-end tests (the real `cordon` binary, the simulated organization, the
# kill -9 crash test, and the AWS connectors against moto's AWS API emulator on 127.0.0.1).
#
# Installs what the tests need first: moto's server from PyPI into .venv (once; reused after), and
# from Debian's packages any command a test runs that the machine lacks: openssl, and Chromium for
# the headless screenshot of the HTML drill report.
set -euo pipefail
cd "$(dirname "$0")/.."

# need COMMAND PACKAGE: installs PACKAGE when COMMAND is missing.
need() {
    command -v "$1" >/dev/null && return
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "$2" >/dev/null
}
# The Slack TLS test makes its fake Slack's CA and certificate with the openssl command line.
need openssl openssl

source tests/install-moto.sh
source tests/install-chromium.sh
export CORDON_MOTO_SERVER="$PWD/.venv/bin/moto_server"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
