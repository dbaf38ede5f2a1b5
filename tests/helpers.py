"""Helpers shared by test modules: error-shape checks, the CLI as a subprocess, job polling, dataset uploads,
training-recipe runs and shared test data. Fixtures stay in conftest.py; plain functions and data live here.
Heavy ML imports (torch, diffusers, safetensors) happen inside the functions that need them."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from PIL import Image

from genfoundry.training.callbacks import TrainingCallbacks

if TYPE_CHECKING:
    import torch

    from tests.conftest import LiveServer

# HTTP API


def assert_error(response: httpx.Response, status: int, *, param: str | None = None) -> dict:
    """The response is `status` with OpenAI's error shape, a message and no traceback; returns the error."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error) <= {"message", "type", "param", "code", "details"}
    assert error["message"]
    assert "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


def snapshot(live: LiveServer, client: httpx.Client) -> tuple[int, frozenset[str]]:
    """The client's generation count and every file under the server's home (database files left out)."""
    generations = client.get("/v1/generations", params={"limit": 100}).json()["data"]
    files = frozenset(
        str(p.relative_to(live.settings.home))
        for p in live.settings.home.rglob("*")
        if p.is_file()
        and p.suffix not in {".db", ".db-wal", ".db-shm"}
        and "-wal" not in p.name
        and "-shm" not in p.name
    )
    return len(generations), files


def import_lora(client: httpx.Client, path: Path, *, name: str, base: str = "tiny-sd15") -> str:
    """Registers the LoRA file at `path` on `base` through `POST /v1/models`; the adapter's id."""
    response = client.post(
        "/v1/models",
        files={"file": ("lora.safetensors", path.read_bytes(), "application/octet-stream")},
        data={"base": base, "name": name},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def lora_request(*adapter_ids: str) -> dict[str, object]:
    """A small, seeded tiny-sd15 generation with `adapter_ids` (weight 1 each), answered as base64."""
    return {
        "model": "tiny-sd15",
        "prompt": "a cat",
        "size": "64x64",
        "steps": 2,
        "seed": 4,
        "response_format": "b64_json",
        "loras": [{"id": adapter_id} for adapter_id in adapter_ids],
    }


def lora_pixels(client: httpx.Client, *adapter_ids: str) -> np.ndarray:
    """The pixels `lora_request(*adapter_ids)` generates, as ints."""
    response = client.post("/v1/images/generations", json=lora_request(*adapter_ids))
    assert response.status_code == 200, response.text
    b64 = response.json()["data"][0]["b64_json"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)))).astype(int)


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    """Polls /v1/jobs/{id} until the job is neither queued nor running; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


# Datasets


JSONL_OK = b'{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n'


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload_zip(client: httpx.Client, data: bytes, **form: str) -> httpx.Response:
    return client.post(
        "/v1/datasets", files={"file": ("data.zip", data, "application/zip")}, data={"name": "shoes", **form}
    )


# CLI


def run_cli(
    home: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`genfoundry *args` as a subprocess with GENFOUNDRY_HOME=home; asserts exit 0 unless check=False.

    No server answers at the default URL (port 1), so a command works on the home unless the test names a server."""
    full_env = {**os.environ, "GENFOUNDRY_HOME": str(home), "GENFOUNDRY_PORT": "1", "COLUMNS": "250", **(env or {})}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "genfoundry"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


# Image training recipes

PIPELINES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline"}
RED = (200, 40, 40)


@dataclass
class Recorder:
    """Collects every callback a run makes; `stop_after` makes should_stop true once that step is done."""

    stop_after: int | None = None
    crash_at: int | None = None
    steps: list[tuple[int, int, dict[str, float]]] = field(default_factory=list)
    checkpoints: list[tuple[int, Path]] = field(default_factory=list)
    samples: list[tuple[int, str, Path]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def callbacks(self) -> TrainingCallbacks:
        return TrainingCallbacks(
            on_step=self._step,
            on_checkpoint=lambda step, path: self.checkpoints.append((step, path)),
            on_sample=lambda step, prompt, path: self.samples.append((step, prompt, path)),
            should_stop=lambda: self.stop_after is not None and self.steps[-1][0] >= self.stop_after,
            on_log=self.logs.append,
        )

    def _step(self, step: int, total: int, metrics: dict[str, float]) -> None:
        if step == self.crash_at:
            raise SystemExit("simulated crash")  # what a killed process looks like to the recipe: it never returns
        self.steps.append((step, total, metrics))

    @property
    def losses(self) -> list[float]:
        return [m["loss"] for _s, _t, m in self.steps]


def make_dataset(
    folder: Path,
    count: int,
    *,
    colour: tuple[int, int, int] = RED,
    sizes: tuple[tuple[int, int], ...] = ((64, 64),),
    seed: int = 0,
) -> Path:
    """`count` noisy images of about `colour`, cycling through `sizes`; every second one has a caption."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        width, height = sizes[i % len(sizes)]
        base = np.array(colour, dtype=float) + rng.normal(0, 10, 3)
        pixels = np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"img_{i:02d}.png")
        if i % 2:
            (folder / f"img_{i:02d}.txt").write_text("a red square, plain", encoding="utf-8")
    return folder


def load_pipeline(base: Path, family: str) -> Any:
    import diffusers

    kwargs: dict[str, Any] = {}
    if family == "sd15":
        kwargs = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    pipe = getattr(diffusers, PIPELINES[family]).from_pretrained(base, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe: Any, prompt: str, seeds: range, *, guidance: float = 1.0, steps: int = 4) -> np.ndarray:
    """(n, 64, 64, 3) float pixels, one image per seed."""
    import torch

    generators = [torch.Generator().manual_seed(s) for s in seeds]
    images = pipe(
        [prompt] * len(seeds),
        num_inference_steps=steps,
        guidance_scale=guidance,
        height=64,
        width=64,
        generator=generators,
    ).images
    return np.stack([np.asarray(image, dtype=float) for image in images])


def lora_modules(path: Path) -> tuple[set[str], dict[str, torch.Tensor], dict[str, str]]:
    """The module names a LoRA file targets, its tensors and its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    return {k.split(".lora_")[0] for k in tensors}, tensors, metadata


def assert_same_adapter(a: Path, b: Path) -> float:
    """The two adapter files hold the same keys and values within 1e-5; returns the largest difference."""
    from safetensors.torch import load_file

    first, second = load_file(a), load_file(b)
    assert first.keys() == second.keys()
    worst = max(float((first[k] - second[k]).abs().max()) for k in first)
    assert worst <= 1e-5
    return worst


# Text training data

ACTORS = ("User", "Server", "Database", "Cache", "Client", "Auth", "Queue", "Worker", "Browser", "Api")


def plantuml_pair(index: int) -> tuple[str, str]:
    """A small scenario and its sequence diagram; `index` picks the participants and the message."""
    a, b = ACTORS[index % len(ACTORS)], ACTORS[(index * 3 + 1) % len(ACTORS)]
    verb = ("request", "query", "login", "fetch")[index % 4]
    return (
        f"{a} sends a {verb} to {b}, which answers",
        f"@startuml\n{a} -> {b}: {verb}\n{b} --> {a}: ok\n@enduml",
    )


def write_pairs(path: Path, count: int, *, chat: bool = False, start: int = 0) -> Path:
    """`count` scenario -> PlantUML examples as JSONL: prompt/completion lines, or chat lines with a system turn."""
    lines = []
    for index in range(start, start + count):
        prompt, completion = plantuml_pair(index)
        if chat:
            record: dict[str, object] = {
                "messages": [
                    {"role": "system", "content": "Answer with PlantUML."},
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": completion},
                ]
            }
        else:
            record = {"prompt": prompt, "completion": completion}
        lines.append(json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Classifier training data: support tickets in three labels

TICKETS = {
    "billing": [
        "I was charged twice for my subscription this month",
        "how do I get a refund for the annual plan",
        "my invoice shows the wrong company address",
        "why did my card get declined when renewing",
        "please cancel the auto-renewal and stop charging me",
        "can I pay by bank transfer instead of credit card",
        "the price on the receipt is higher than on the website",
        "I need a copy of last year's invoices for my accountant",
    ],
    "bug": [
        "the app crashes every time I open the settings page",
        "the export button does nothing in firefox",
        "I get a 500 error when uploading a file larger than 10 MB",
        "the login page keeps reloading after I enter my password",
        "images fail to load on the dashboard since the last update",
        "the search returns no results even for exact titles",
        "notifications arrive twice on android",
        "dark mode makes the text unreadable in the editor",
    ],
    "praise": [
        "thank you so much, your support team was amazing",
        "love the new update, the editor feels much faster",
        "great product, it saved our team hours every week",
        "just wanted to say the onboarding was super smooth",
        "your app is the best tool I have used this year",
        "kudos to the developers, the new design looks beautiful",
        "really happy with the service, keep up the good work",
        "the customer service rep solved everything in minutes, thanks",
    ],
}
