#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing.
#
# Playwright drives /usr/bin/chromium (never a browser that Playwright downloads).
# Used by `make test` and `.ci/run` through ensure_services.sh. Installing needs
# root (as on CI); anyone else is told how, and the browser tests then say so too.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: installing Debian's chromium for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    command -v chromium >/dev/null && exit 0
    echo "ensure_chromium: apt-get install chromium failed" >&2
    exit 1
fi
echo "ensure_chromium: chromium is missing and this is not root with apt-get;" \
    "install it with 'sudo apt-get install chromium' (the browser tests need /usr/bin/chromium)" >&2
