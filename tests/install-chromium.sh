#!/usr/bin/env bash
# Installs Chromium (the headless browser tests/drill.rs renders the HTML drill report in) when
# it is missing, from the distribution's packages. Sourced by tests/run.sh from the repository
# root; CORDON_CHROMIUM names another browser binary and skips the install.
if [ -z "${CORDON_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
