# genfoundry on a CUDA machine: `docker build -t genfoundry .`, run with `--gpus all` (NVIDIA Container Toolkit).
# CUDA 12.8 runtime + cuDNN from NVIDIA's image; Python 3.11 (the lock's interpreter) installed by uv; torch from
# requirements/constraints.txt as PyPI's CUDA build, then every other package from requirements.lock with hashes
# (scripts/setup.sh, as on a developer machine). The home (database, artifacts, models) is the /data volume.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    GENFOUNDRY_HOME=/data \
    GENFOUNDRY_HOST=0.0.0.0 \
    GENFOUNDRY_PORT=8000 \
    HF_HOME=/data/hf-cache

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

COPY --from=ghcr.io/astral-sh/uv:0.9.9 /uv /usr/local/bin/uv
RUN uv python install 3.11 \
    && useradd --create-home --uid 1000 genfoundry \
    && mkdir -p /app /data \
    && chown genfoundry:genfoundry /app /data

WORKDIR /app
COPY --chown=genfoundry:genfoundry pyproject.toml requirements.lock README.md ./
COPY --chown=genfoundry:genfoundry requirements ./requirements
COPY --chown=genfoundry:genfoundry scripts ./scripts
COPY --chown=genfoundry:genfoundry src ./src
USER 1000
RUN PYTHON="$(uv python find 3.11)" bash scripts/setup.sh
ENV PATH=/app/.venv/bin:$PATH

VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["genfoundry"]
CMD ["serve"]
