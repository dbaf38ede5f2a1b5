"""Shared bench helpers: a temp home with tiny models, a real server subprocess, timing summaries, and the
compass goals a bench is measured against (printed PASS / FAIL; the bench exits 1 when one failed)."""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

# The CLI as a module of this interpreter: works in a venv and with PYTHONPATH=src alike (the GPU machine has no
# installed `genfoundry` script; docs/gpu.md).
GENFOUNDRY = (sys.executable, "-m", "genfoundry")


def machine() -> str:
    cores = os.cpu_count()
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)}, {cores} CPU cores"
    except ImportError:
        pass
    return f"{platform.machine()} CPU, {cores} cores, no GPU"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="genfoundry-bench-"))
    env = {**os.environ, "GENFOUNDRY_HOME": str(home)}
    subprocess.run([*GENFOUNDRY, "models", "build-tiny"], env=env, check=True, capture_output=True)
    return home


@contextmanager
def running_server(home: Path, log: Path | None = None, **settings: str) -> Iterator[str]:
    """`genfoundry serve` in a subprocess on a free loopback port; yields its URL. Its output goes to `log`
    (appended) when given, else nowhere."""
    port = free_port()
    env = {**os.environ, "GENFOUNDRY_HOME": str(home), "GENFOUNDRY_PORT": str(port), **settings}
    with (log or Path(os.devnull)).open("ab") as output:
        process = subprocess.Popen(
            [*GENFOUNDRY, "serve", "--log-level", "warning"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start" + (f" (its output: {log})" if log else ""))
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


@dataclass(frozen=True)
class Goal:
    """A compass goal and what the bench measured against it."""

    name: str
    measured: float
    op: Literal["<=", ">="]
    target: float
    unit: str = ""
    fmt: str = ".2f"

    @property
    def met(self) -> bool:
        return self.measured <= self.target if self.op == "<=" else self.measured >= self.target

    def row(self) -> tuple[str, str]:
        measured, target = format(self.measured, self.fmt), format(self.target, self.fmt)
        verdict = "PASS" if self.met else "FAIL"
        return f"goal: {self.name}", f"{measured}{self.unit}  (goal {self.op} {target}{self.unit})  {verdict}"


def goal(
    name: str, measured: float, op: Literal["<=", ">="], target: float, *, unit: str = "", fmt: str = ".2f"
) -> Goal:
    if op not in ("<=", ">="):
        raise ValueError(f"op must be '<=' or '>=', not {op!r}")
    return Goal(name, measured, op, target, unit, fmt)


def goals_exit_code(goals: list[Goal]) -> int:
    """Print the goals' tally; 1 when any failed (call after everything else is printed), else 0."""
    failed = [g.name for g in goals if not g.met]
    print(
        f"\ngoals: {len(goals) - len(failed)} of {len(goals)} met"
        + (f"; FAILED: {'; '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def report(title: str, rows: list[tuple[str, str] | Goal]) -> None:
    """Print a titled block of rows; a Goal prints as its measure, the goal and PASS / FAIL."""
    lines = [row.row() if isinstance(row, Goal) else row for row in rows]
    print(f"\n## {title}  ({time.strftime('%Y-%m-%d')}, {machine()})")
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"  {name.ljust(width)}  {value}")


SIZED_MODEL_ID = "random-sd15-sized"


@dataclass
class BenchModel:
    home: Path
    model_id: str
    pipeline_dir: Path
    size: int
    steps: int
    device: str
    dtype: str
    env: dict[str, str]

    def load_pipeline(self) -> Any:
        """The same pipeline, loaded in this process the plain diffusers way (the baseline)."""
        import torch
        from diffusers import DiffusionPipeline

        pipe = DiffusionPipeline.from_pretrained(self.pipeline_dir, torch_dtype=getattr(torch, self.dtype))
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(self.device)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="sd15", choices=["sd15", "sdxl", "flux"], help="tiny model family")
    parser.add_argument(
        "--sized", action="store_true", help="an SD 1.5-sized random-weight pipeline, fp16 (meant for a GPU)"
    )
    parser.add_argument("--size", type=int, default=None, help="default 128 (tiny) or 512 (--sized)")
    parser.add_argument("--steps", type=int, default=None, help="default 10 (tiny) or 30 (--sized)")


def prepare_model(args: argparse.Namespace) -> BenchModel:
    """A temp home with the tiny models, plus the SD 1.5-sized one registered in a catalog file if asked."""
    import torch

    home = make_home()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if not args.sized:
        family = args.model
        # The tiny catalog entries pin float32, so the baseline uses it too.
        tiny_dir = home / "models" / "tiny" / family
        return BenchModel(home, f"tiny-{family}", tiny_dir, args.size or 128, args.steps or 10, device, "float32", {})
    from genfoundry.models.sized import build_sd15_sized_pipeline

    pipeline_dir = build_sd15_sized_pipeline(home / "models" / "sized" / "sd15")
    catalog = home / "bench-catalog.toml"
    catalog.write_text(
        f'[models."{SIZED_MODEL_ID}"]\nfamily = "sd15"\nsource = "{pipeline_dir}"\ndtype = "float16"\n'
        "defaults = { width = 512, height = 512, steps = 30, guidance_scale = 7.5 }\n",
        encoding="utf-8",
    )
    return BenchModel(
        home,
        SIZED_MODEL_ID,
        pipeline_dir,
        args.size or 512,
        args.steps or 30,
        device,
        "float16",
        {"GENFOUNDRY_CATALOG_FILE": str(catalog)},
    )
