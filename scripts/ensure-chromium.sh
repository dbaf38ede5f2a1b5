#!/usr/bin/env bash
# Makes sure Debian's chromium exists, for the studio's browser tests (Playwright drives it with executable_path;
# `playwright install` cannot download a browser on these machines).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -n "${GENFOUNDRY_CHROMIUM:-}" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is not installed; install the 'chromium' package to run the studio's browser tests" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
