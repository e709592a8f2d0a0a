#!/usr/bin/env bash
# Install Debian's headless-capable Chromium and its WebDriver for the browser tests, when missing.
# Idempotent and quiet: does nothing when both are present. Last line of stdout: the two paths,
# `CHROMIUM=/usr/bin/chromium CHROMEDRIVER=/usr/bin/chromedriver`.
set -euo pipefail

log() { echo "chromium: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

browser="$(command -v chromium || true)"
driver="$(command -v chromedriver || true)"
if [ -z "$browser" ] || [ -z "$driver" ]; then
    log "installing chromium and chromium-driver (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium chromium-driver >/dev/null
    browser="$(command -v chromium)"
    driver="$(command -v chromedriver)"
fi
echo "CHROMIUM=$browser CHROMEDRIVER=$driver"
