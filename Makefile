VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lock serve test test-all lint bench bench-gpu bench-gpu-quick device-wheels clean

$(STAMP): pyproject.toml requirements.lock requirements/constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)  ## .venv from the lock: torch first (CPU or CUDA build), then requirements.lock

lock: setup  ## re-resolve requirements.lock from pyproject.toml and requirements/constraints.txt
	bash scripts/lock.sh

serve: setup  ## build the tiny models and install mini-sd15 on first run, then serve on 127.0.0.1:8000
	$(BIN)/genfoundry models build-tiny
	$(BIN)/genfoundry serve

test: setup  ## the test suite (slow and GPU tests excluded); PostgreSQL, chromium and the openai Node SDK installed if missing
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-node-clients.sh
	$(BIN)/python -m pytest

test-all: setup
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-node-clients.sh
	$(BIN)/python -m pytest -m ""

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup  ## tiny models on this machine (LoRA training: SD 1.5-sized at 256 px, a few minutes); all run; make fails at the end when one missed its goal
	bash scripts/run_benches.sh \
	  "bench_api_overhead" \
	  "bench_png_encoding" \
	  "bench_adapter_switching" \
	  "bench_concurrency" \
	  "bench_overload" \
	  "bench_zip_ingest" \
	  "bench_captioning" \
	  "bench_lora_training --size sd15 --resolution 256 --steps 6 --images 4 --repeats 2 --threads 1" \
	  "bench_plantuml_render" \
	  "bench_chat" \
	  "bench_router" \
	  "bench_sft" \
	  "bench_storage" \
	  "bench_job_start"

bench-gpu: setup  ## the same on SD 1.5-sized random weights (fp16, 512x512); LoRA training also FLUX-sized, 512 and 1024
	bash scripts/run_benches.sh \
	  "bench_api_overhead --sized" \
	  "bench_adapter_switching --sized --rank 16" \
	  "bench_concurrency --sized" \
	  "bench_captioning --sized" \
	  "bench_lora_training --size sd15 --resolution 512 1024" \
	  "bench_lora_training --family flux --size flux --resolution 512 1024 --repeats 2" \
	  "bench_sft --sized" \
	  "bench_chat --sized"

# No `setup` prerequisite: on the GPU machine there is no .venv (docs/gpu.md runs it with PYTHON=python3 and the
# wheels from scripts/device_wheels.sh); ARGS=--dry-run runs the same on this CPU with the tiny models.
PYTHON ?= $(BIN)/python
bench-gpu-quick:  ## the priority GPU runs (docs/gpu.md) in ~8 min, JSON + log in $$OUT (or bench/out/gpu-quick); ARGS=--dry-run on a CPU
	$(PYTHON) -m bench.gpu_quick $(ARGS)

device-wheels:  ## the wheels the GPU machine lacks, into .whl/ (docs/gpu.md)
	bash scripts/device_wheels.sh

clean:
	rm -rf $(VENV) genfoundry-data .pytest_cache .mypy_cache .ruff_cache
