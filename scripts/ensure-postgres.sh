#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries exist, for the tests that run genfoundry against a real PostgreSQL.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL is not installed; install the 'postgresql' package to run the PostgreSQL tests" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
