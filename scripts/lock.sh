#!/usr/bin/env bash
# Regenerates requirements.lock: every dependency of genfoundry (all extras, build tools) pinned with hashes,
# for CPython 3.11 on x86-64 Linux, except torch and its CUDA runtime wheels. torch is pinned in
# requirements/constraints.txt and installed first by setup.sh, as the CPU or the CUDA build the machine needs.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
args=(pyproject.toml requirements/build.in --all-extras -c requirements/constraints.txt
      --python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet)
# Pass 1 finds which packages torch brings on Linux (its CUDA runtime); pass 2 leaves them out of the lock.
resolved=$(mktemp)
trap 'rm -f "$resolved"' EXIT
"$UV" pip compile "${args[@]}" --no-header --no-annotate -o "$resolved"
exclude=()
for name in $(grep -oE '^(torch|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)==' "$resolved" | sed 's/==$//'); do
  exclude+=(--no-emit-package "$name")
done
"$UV" pip compile "${args[@]}" --generate-hashes --custom-compile-command "make lock" "${exclude[@]}" \
  -o requirements.lock
echo "requirements.lock: $(grep -cE '^[a-zA-Z0-9]' requirements.lock) packages; run 'make test' to prove them"
