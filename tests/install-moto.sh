#!/usr/bin/env bash
# Installs moto's server (the AWS API emulator the tests and the fan-out benchmark use) from
# PyPI into .venv, once: a venv that already has this version is left alone. Sourced by
# tests/run.sh and bench/fanout.sh from the repository root.
MOTO_VERSION=5.2.5
if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
