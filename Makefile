VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test test-all lint bench bench-gpu clean

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

serve: setup  ## build the tiny models on first run, then serve on 127.0.0.1:8000
	$(BIN)/genfoundry models build-tiny
	$(BIN)/genfoundry serve

test: setup  ## the test suite (slow and GPU tests excluded); PostgreSQL server installed if missing
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m pytest

test-all: setup
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -m ""

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup  ## tiny models on this machine
	$(BIN)/python -m bench.bench_api_overhead
	$(BIN)/python -m bench.bench_adapter_switching
	$(BIN)/python -m bench.bench_concurrency
	$(BIN)/python -m bench.bench_zip_ingest
	$(BIN)/python -m bench.bench_captioning

bench-gpu: setup  ## the same three on an SD 1.5-sized random-weight pipeline, 512x512, 30 steps, fp16
	$(BIN)/python -m bench.bench_api_overhead --sized
	$(BIN)/python -m bench.bench_adapter_switching --sized --rank 16
	$(BIN)/python -m bench.bench_concurrency --sized
	$(BIN)/python -m bench.bench_captioning --sized

clean:
	rm -rf $(VENV) genfoundry-data .pytest_cache .mypy_cache .ruff_cache
