#!/usr/bin/env bash
# Runs each benchmark given as "module [args…]" (a module of bench/), all of them even when one fails, then exits 1
# naming those that missed a goal or broke — so `make bench` both reports everything and can fail.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
for spec in "$@"; do
  read -ra words <<<"$spec"
  echo "== python -m bench.$spec"
  .venv/bin/python -m "bench.${words[0]}" "${words[@]:1}" || failed+=("${words[0]}")
done
if ((${#failed[@]})); then
  echo "missed a goal or failed: ${failed[*]}" >&2
  exit 1
fi
