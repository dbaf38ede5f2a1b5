#!/usr/bin/env bash
# Creates .venv and installs genfoundry with its dev tools. Torch goes first: on a machine without CUDA the
# pinned CPU build, so nothing later pulls gigabytes of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    .venv/bin/python -m pip install --quiet torch
  else
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
  fi
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "genfoundry installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
