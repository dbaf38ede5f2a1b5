#!/usr/bin/env bash
# Creates .venv and installs genfoundry from the lock (requirements.lock). Torch goes first, at the version
# requirements/constraints.txt pins: on a machine without CUDA the CPU build (pip finds it in its configured
# find-links or index; PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu elsewhere), with CUDA PyPI's
# build. Then every other package exactly as locked, hashes checked, and genfoundry itself without resolving.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PIP_VERSION=26.3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
pip=(.venv/bin/python -m pip --quiet)
"${pip[@]}" install "pip==$PIP_VERSION"
torch_req=$(grep -E '^torch==' requirements/constraints.txt)
if ! .venv/bin/python - "$torch_req" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
sys.exit(version("torch").split("+")[0] != sys.argv[1].split("==")[1])
PY
then
  "${pip[@]}" install "$torch_req"
fi
"${pip[@]}" install --require-hashes --no-deps -r requirements.lock
"${pip[@]}" install --no-deps --no-build-isolation -e .
.venv/bin/python -m pip check
echo "genfoundry installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
