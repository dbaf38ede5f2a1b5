#!/usr/bin/env bash
# Installs the official `openai` Node SDK that tests/clients/test_node_openai.py drives, exactly as
# tests/clients/node/package-lock.json pins it (`npm ci`), into tests/clients/node/node_modules only; again only when
# that folder is missing or the lock changed since. Without node and npm it says so and the Node client tests fail
# with the same message.
set -euo pipefail
project="$(cd "$(dirname "$0")/../tests/clients/node" && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are not installed; install Node.js 20 or later (with npm) to run the openai Node SDK tests" >&2
  exit 0
fi
stamp="$project/node_modules/.genfoundry-lock.sha256"
wanted="$(sha256sum "$project/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
(cd "$project" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
echo "$wanted" >"$stamp"
