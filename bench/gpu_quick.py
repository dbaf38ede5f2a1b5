"""Issue 19's priority runs on one GPU in about 8 minutes (docs/gpu.md), each in its own process under its own
time cap, so a run that fails or overruns loses only itself; results go to one JSON file (written after every
run) and the runs' output to a log, both in --out (default $OUT, else bench/out/gpu-quick).

In priority order:
  sd15_serve           SD 1.5-sized random weights, fp16 512x512, 30 steps, through the server: no adapter, one
                       rank-16 adapter throughout, and a different adapter on every request (p50s and ratios).
  flux_serve_eager     FLUX.1-dev-wide with reduced depth (models/sized.py FLUX_REDUCED_DEPTH: 4 + 8 of 19 + 38
                       blocks, 4 of 24 T5 layers), bf16 1024x1024, 28 steps, through the server, the same arms.
  flux_serve_compiled  the same with GENFOUNDRY_IMAGE_SPEED__COMPILE=true (mode "default") and __HOTSWAP_MAX_RANK=16:
                       the compile warm-up apart (the server's /metrics), then the arms; skipped when the settings are
                       absent. The dry run sets the hotswap only (compiling on the CPU takes minutes).
  lora_sd15            LoRA training, recipe (cached) vs the reference loop, SD 1.5-sized at 512 (bench_lora_training).
  lora_flux            the same on the reduced-depth FLUX at 1024 with gradient checkpointing (AdamW, not 8-bit:
                       bitsandbytes does not travel to the GPU machine).
  text_chat            chat tokens/s, one adapter vs four, on bench_chat's ~1.1B random Llama through the server.
  text_sft             SFT tokens/s and peak memory, LoRA over a bf16 base, on bench_sft's ~1.2B random Llama
                       (QLoRA needs bitsandbytes, which does not travel).

--dry-run: the same runs and code paths on the CPU with the tiny models, float32, small sizes and few steps, in
well under a minute each, so a GPU run does not die on a typo. Its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = 470  # the whole run; the device command's limit is 600 s, wheels and start-up included
# The dry run's caps and budget only stop a hang: on a shared 2-core CPU one run took 30 s at a load of 4 and 80 s
# at a load of 6, and a run cut short would leave its code path unchecked.
DRY_CAP_S, DRY_BUDGET_S = 300, 1800


@dataclass(frozen=True)
class Shape:
    """What one mode (GPU or dry run) runs at."""

    image_size: int
    sd15_steps: int
    flux_size: int
    flux_steps: int
    requests_per_arm: int
    train_steps: int
    train_warmup: int
    chat_concurrency: int
    chat_tokens: int
    sft_steps: int
    sft_seq_len: int


GPU = Shape(512, 30, 1024, 28, 3, 8, 2, 8, 128, 10, 1024)
DRY = Shape(64, 2, 64, 2, 2, 3, 1, 2, 8, 3, 64)


@dataclass(frozen=True)
class Context:
    dry: bool
    work: Path  # models and homes, shared by the runs
    log: Path

    @property
    def shape(self) -> Shape:
        return DRY if self.dry else GPU


# --- models, built once in the work folder and reused by later runs -----------------------------------------


def _catalog(ctx: Context, name: str, body: str) -> Path:
    path = ctx.work / f"{name}-catalog.toml"
    path.write_text(body, encoding="utf-8")
    return path


def home(ctx: Context) -> Path:
    """One home with the tiny models, shared by every server run."""
    folder = ctx.work / "home"
    if not (folder / "models" / "tiny" / "registry.toml").exists():
        from bench.common import GENFOUNDRY

        env = {**os.environ, "GENFOUNDRY_HOME": str(folder)}
        subprocess.run([*GENFOUNDRY, "models", "build-tiny"], env=env, check=True, capture_output=True)
    return folder


def image_model(ctx: Context, family: str) -> tuple[str, Path, list[Path]]:
    """(catalog id, pipeline folder, two rank-16 random LoRA files): the SD 1.5-sized or reduced-depth FLUX
    pipeline on a GPU, the tiny one in a dry run; built once (in a staging folder renamed when complete, so a run
    cut short leaves nothing half-written for the next)."""
    folder = ctx.work / f"{family}-model"
    loras = [ctx.work / f"{family}-lora-{i}" / "lora.safetensors" for i in range(2)]
    if not (folder / "model_index.json").exists():
        import shutil

        import torch

        from genfoundry.models.random_lora import save_random_lora
        from genfoundry.models.sized import FLUX_REDUCED_DEPTH, flux_sized_pipeline, sd15_sized_pipeline
        from genfoundry.models.tiny import build_tiny_pipeline

        staging = folder.with_name(f"{folder.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        if ctx.dry:
            build_tiny_pipeline(family, staging)
            from diffusers import DiffusionPipeline

            pipe = DiffusionPipeline.from_pretrained(staging)
        else:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            if family == "flux":
                pipe = flux_sized_pipeline(device=device, dtype="bfloat16", **FLUX_REDUCED_DEPTH)
            else:
                pipe = sd15_sized_pipeline(device=device, dtype="float16")
            pipe.save_pretrained(staging, safe_serialization=True)
        for i, path in enumerate(loras):
            save_random_lora(pipe, family, path.parent, seed=i, rank=16)
        staging.rename(folder)
        del pipe
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    model_id = f"quick-{family}"
    return model_id, folder, loras


def image_catalog(ctx: Context, family: str, model_id: str, folder: Path) -> Path:
    dtype = "float32" if ctx.dry else "auto"  # auto: fp16 for SD 1.5, bf16 for FLUX (genfoundry.devices)
    return _catalog(
        ctx, family, f'[models."{model_id}"]\nfamily = "{family}"\nsource = "{folder}"\ndtype = "{dtype}"\n'
    )


# --- serving -------------------------------------------------------------------------------------------------


def _upload(client: Any, model_id: str, paths: list[Path]) -> list[str]:
    ids = []
    for i, path in enumerate(paths):
        response = client.post(
            "/v1/models",
            files={"file": (path.name, path.read_bytes())},
            data={"base": model_id, "name": f"quick {i}"},
        )
        response.raise_for_status()
        ids.append(str(response.json()["id"]))
    return ids


def serving_arms(client: Any, base_id: str, adapter_ids: list[str], body: dict[str, Any], n: int) -> dict[str, Any]:
    """p50 seconds per request: the base alone, one adapter throughout, a different adapter every request;
    the arms interleaved in blocks so drift hits all alike."""
    from bench.common import p50, timed

    def request(model: str) -> None:
        client.post("/v1/images/generations", json={**body, "model": model}).raise_for_status()

    times: dict[str, list[float]] = {"base": [], "one_adapter": [], "switching": []}
    turn = 0
    for block in range(2):
        for arm in ("base", "one_adapter", "switching") if block == 0 else ("switching", "one_adapter", "base"):
            if arm != "switching":
                model = base_id if arm == "base" else adapter_ids[0]
                request(model)  # the block's first request may switch from the last block's: untimed
                times[arm] += [timed(partial(request, model)) for _ in range(n)]
                continue
            for _ in range(n):
                turn += 1
                times[arm].append(timed(partial(request, adapter_ids[turn % len(adapter_ids)])))
    result: dict[str, Any] = {f"{arm}_p50_s": p50(values) for arm, values in times.items()}
    result["switching_over_one_adapter"] = result["switching_p50_s"] / result["one_adapter_p50_s"]
    result["one_adapter_over_base"] = result["one_adapter_p50_s"] / result["base_p50_s"]
    result["requests"] = {arm: len(values) for arm, values in times.items()}
    return result


def serve(ctx: Context, family: str, size: int, steps: int, **settings: str) -> dict[str, Any]:
    import httpx

    from bench.common import running_server

    model_id, folder, loras = image_model(ctx, family)
    env = {"GENFOUNDRY_CATALOG_FILE": str(image_catalog(ctx, family, model_id, folder)), **settings}
    body = {"prompt": "a red fox in the snow", "size": f"{size}x{size}", "steps": steps, "seed": 1}
    began = time.perf_counter()
    with running_server(home(ctx), log=ctx.log, **env) as url, httpx.Client(base_url=url, timeout=600) as client:
        started = time.perf_counter()
        adapter_ids = _upload(client, model_id, loras)
        first = time.perf_counter()
        client.post("/v1/images/generations", json={**body, "model": adapter_ids[0]}).raise_for_status()
        first_s = time.perf_counter() - first
        client.post("/v1/images/generations", json={**body, "model": adapter_ids[1]}).raise_for_status()
        client.post("/v1/images/generations", json={**body, "model": model_id}).raise_for_status()
        arms = serving_arms(client, model_id, adapter_ids, body, ctx.shape.requests_per_arm)
        gpu_in_use = _gpu_memory_in_use_mib()  # the server's weights, adapters and allocator cache, with it up
        warmup = _metric(client, "genfoundry_compile_warmup_seconds", model_id)
    return {
        "model": model_id,
        "size": size,
        "steps": steps,
        "settings": settings,
        "server_start_s": started - began,
        "first_request_s": first_s,  # the base's load (and with compile on, the compile warm-up) included
        "gpu_memory_in_use_mib": gpu_in_use,
        "compile_warmup_s": warmup,  # the server's own count (/metrics); None where nothing compiled
        **arms,
    }


def _metric(client: Any, name: str, model_id: str) -> float | None:
    """A per-model gauge from the server's /metrics, None when absent."""
    prefix = f'{name}{{model="{model_id}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def _gpu_memory_in_use_mib() -> float | None:
    """Memory in use on the GPU by every process (the server's included), None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


def run_sd15_serve(ctx: Context) -> dict[str, Any]:
    return serve(ctx, "sd15", ctx.shape.image_size, ctx.shape.sd15_steps)


def run_flux_serve_eager(ctx: Context) -> dict[str, Any]:
    return serve(ctx, "flux", ctx.shape.flux_size, ctx.shape.flux_steps)


def run_flux_serve_compiled(ctx: Context) -> dict[str, Any]:
    from genfoundry.config import Settings

    if "image_speed" not in Settings.model_fields:
        raise Skipped("this genfoundry has no image_speed settings (compile, hotswap)")
    settings = {"GENFOUNDRY_IMAGE_SPEED__HOTSWAP_MAX_RANK": "16"}
    if not ctx.dry:  # torch.compile on the CPU (inductor's C++) takes minutes; the dry run checks the rest
        # inductor's default mode: the shortest warm-up (docs/deploy.md); the max-autotune modes need a longer run.
        settings |= {"GENFOUNDRY_IMAGE_SPEED__COMPILE": "true", "GENFOUNDRY_IMAGE_SPEED__COMPILE_MODE": "default"}
    return serve(ctx, "flux", ctx.shape.flux_size, ctx.shape.flux_steps, **settings)


# --- training ------------------------------------------------------------------------------------------------


def train(ctx: Context, family: str, resolution: int, extra: dict[str, Any]) -> dict[str, Any]:
    from bench.bench_lora_training import lora_params, make_dataset, run_pairs, summarize
    from bench.common import Goal

    _model_id, folder, _loras = image_model(ctx, family)
    steps, warmup = ctx.shape.train_steps, ctx.shape.train_warmup
    params = {**lora_params(resolution, steps, 1, 16), **extra}
    work = ctx.work / f"train-{family}"
    dataset = make_dataset(work / "data", 4, resolution)
    rounds = run_pairs(
        family=family,
        base=folder,
        dataset=dataset,
        work_dir=work / "runs",
        params=params,
        warmup=warmup,
        repeats=1,
        threads=1 if ctx.dry else None,
    )
    rows = summarize(rounds, steps, warmup)
    return {
        "resolution": resolution,
        "steps": steps,
        "warmup": warmup,
        "params": params,
        "recipe": rounds[0]["recipe"],
        "reference": rounds[0]["reference"],
        "report": [row.row() if isinstance(row, Goal) else row for row in rows],
    }


def run_lora_sd15(ctx: Context) -> dict[str, Any]:
    return train(ctx, "sd15", ctx.shape.image_size, {})


def run_lora_flux(ctx: Context) -> dict[str, Any]:
    return train(ctx, "flux", ctx.shape.flux_size, {"gradient_checkpointing": True, "use_8bit_adam": False})


# --- text ----------------------------------------------------------------------------------------------------


def llm(ctx: Context, name: str, build: Callable[[Path], Path]) -> Path:
    """A causal LM folder: `build`'s sized random Llama on a GPU, tiny-llm in a dry run."""
    if ctx.dry:
        from genfoundry.models.tiny_llm import ensure_tiny_llm

        return Path(ensure_tiny_llm(ctx.work / "tiny-llm")[0])
    import torch

    folder = ctx.work / name
    if not (folder / "config.json").exists():
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # random init of 1B: seconds on a GPU
            build(folder)
    return folder


def run_text_chat(ctx: Context) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from bench.bench_chat import build_sized_llm, register_adapters
    from bench.common import running_server

    folder = llm(ctx, "llama-1b-chat", build_sized_llm)
    model_id, dtype = "quick-llm", "float32" if ctx.dry else "bfloat16"
    catalog = _catalog(
        ctx,
        "llm",
        f'[text_models."{model_id}"]\nsource = "{folder}"\nprompt_format = "chat_template"\ndtype = "{dtype}"\n',
    )
    server_home = home(ctx)
    adapters = register_adapters(server_home, model_id, folder, rank=16)
    shape = ctx.shape
    patterns = {
        "base": [model_id] * shape.chat_concurrency,
        "one_adapter": [adapters[0]] * shape.chat_concurrency,
        "four_adapters": [adapters[i % 4] for i in range(shape.chat_concurrency)],
    }
    env = {"GENFOUNDRY_CATALOG_FILE": str(catalog), "GENFOUNDRY_BATCH_TIMEOUT_MS": "20"}
    rates: dict[str, list[float]] = {name: [] for name in patterns}
    with (
        running_server(server_home, log=ctx.log, **env) as url,
        httpx.Client(base_url=url, timeout=600) as client,
        ThreadPoolExecutor(shape.chat_concurrency) as pool,
    ):

        def send(i_model: tuple[int, str]) -> int:
            i, model = i_model
            body = {
                "model": model,
                "messages": [{"role": "user", "content": f"A sequence diagram of checkout step {i}"}],
                "max_tokens": shape.chat_tokens,
                "temperature": 0.8,
                "seed": i,
            }
            response = client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            return int(response.json()["usage"]["completion_tokens"])

        for models in patterns.values():  # warm: the base and every adapter loaded once
            list(pool.map(send, enumerate(models)))
        for _ in range(2):
            for name, models in patterns.items():
                start = time.perf_counter()
                tokens = sum(pool.map(send, enumerate(models)))
                rates[name].append(tokens / (time.perf_counter() - start))
    best = {name: max(values) for name, values in rates.items()}
    return {
        "concurrency": shape.chat_concurrency,
        "max_tokens": shape.chat_tokens,
        "tokens_per_s": rates,
        "four_over_one_adapter": best["four_adapters"] / best["one_adapter"],
        "one_adapter_over_base": best["one_adapter"] / best["base"],
    }


def run_text_sft(ctx: Context) -> dict[str, Any]:
    from bench.bench_sft import TRAIN_FILE, build_sized, packaged, run_child

    base = llm(ctx, "llama-1b-sft", build_sized)
    shape = ctx.shape
    config = {
        "base_source": str(base),
        "max_steps": shape.sft_steps,
        "checkpoint_every_n_steps": shape.sft_steps + 1,
        "quantization": "none",
        "batch_size": 4,
        "max_seq_length": shape.sft_seq_len,
        "packing": True,
        "rank": 16,
        "dtype": "float32" if ctx.dry else "bfloat16",
    }
    result = run_child(config, packaged(*TRAIN_FILE), ctx.work / "sft-out")
    return {"config": config, "lora": result, "qlora": "not run: bitsandbytes does not travel to the GPU machine"}


# --- orchestration -------------------------------------------------------------------------------------------


class Skipped(Exception):
    """A run that cannot run here, for the reason given."""


@dataclass(frozen=True)
class Run:
    name: str
    cap_s: float  # on the GPU; a dry run's is DRY_CAP_S
    fn: Callable[[Context], dict[str, Any]]


RUNS = (
    Run("sd15_serve", 100, run_sd15_serve),
    Run("flux_serve_eager", 110, run_flux_serve_eager),
    Run("flux_serve_compiled", 180, run_flux_serve_compiled),
    Run("lora_sd15", 80, run_lora_sd15),
    Run("lora_flux", 110, run_lora_flux),
    Run("text_chat", 70, run_text_chat),
    Run("text_sft", 50, run_text_sft),
)
BY_NAME = {run.name: run for run in RUNS}


def child(name: str, ctx: Context) -> dict[str, Any]:
    """One run in this process: its figures, or the reason it was skipped, or the traceback of its failure."""
    import torch

    began = time.perf_counter()
    if ctx.dry:
        torch.set_num_threads(1)  # a shared CPU; see bench_lora_training's --threads
    try:
        metrics = BY_NAME[name].fn(ctx)
        outcome: dict[str, Any] = {"status": "ok", "metrics": metrics}
    except Skipped as skipped:
        outcome = {"status": "skipped", "reason": str(skipped)}
    except Exception:
        outcome = {"status": "error", "traceback": traceback.format_exc()}
    outcome["seconds"] = time.perf_counter() - began
    if torch.cuda.is_available():
        outcome["peak_cuda_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return outcome


def run_one(name: str, cap_s: float, ctx: Context) -> dict[str, Any]:
    """`name` in a fresh process (its GPU memory freed when it ends), killed at `cap_s`."""
    command = [sys.executable, "-m", "bench.gpu_quick", "--child", name, "--work", str(ctx.work), "--out"]
    command += [str(ctx.log.parent), *(["--dry-run"] if ctx.dry else [])]
    began = time.perf_counter()
    with ctx.log.open("a", encoding="utf-8") as log:
        log.write(f"\n===== {name} (cap {cap_s:.0f} s) {time.strftime('%H:%M:%S')}\n")
        log.flush()
        with tempfile.TemporaryFile("w+", encoding="utf-8") as result_file:
            process = subprocess.Popen(
                command, cwd=REPO, stdout=result_file, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
            try:
                code = process.wait(timeout=cap_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                return {"status": "timeout", "cap_s": cap_s, "seconds": time.perf_counter() - began}
            result_file.seek(0)
            output = result_file.read()
        log.write(output)
    lines = output.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"status": "error", "traceback": f"exit code {code}, no result line; see the log", "exit_code": code}
    result["cap_s"] = cap_s
    return result


def environment() -> dict[str, Any]:
    import platform

    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count()}
    for package in ("diffusers", "transformers", "peft", "accelerate"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            info[package] = None
    info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return info


def summary(runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The comparisons across runs that issue 19 asks for, where both sides ran."""
    figures = {name: run["metrics"] for name, run in runs.items() if run.get("status") == "ok"}
    out: dict[str, float] = {}
    eager, compiled = figures.get("flux_serve_eager"), figures.get("flux_serve_compiled")
    if eager and compiled:
        # Separate servers, so the load is in both first requests: the difference is the compile warm-up.
        out["flux_first_request_compiled_minus_eager_s"] = compiled["first_request_s"] - eager["first_request_s"]
        out["flux_one_adapter_compiled_over_eager"] = compiled["one_adapter_p50_s"] / eager["one_adapter_p50_s"]
    for name in ("lora_sd15", "lora_flux"):
        if name in figures:
            recipe, reference = figures[name]["recipe"], figures[name]["reference"]
            out[f"{name}_steps_per_s_recipe_over_reference"] = recipe["steps_per_s"] / reference["steps_per_s"]
            out[f"{name}_peak_mib_recipe"] = recipe["peak_mib"]
    return out


def run_all(names: list[str], ctx: Context, out: Path, budget_s: float) -> dict[str, Any]:
    """Every run in priority order, each under min(its cap, what is left of the budget); those not picked or with
    under 20 s left are recorded as skipped. The JSON is rewritten after each run."""
    began = time.perf_counter()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "dry_run": ctx.dry,
        "environment": environment(),
        "budget_s": budget_s,
        "runs": {},
    }
    path = out / "gpu_quick.json"
    for run in RUNS:
        left = budget_s - (time.perf_counter() - began)
        if run.name not in names:
            result: dict[str, Any] = {"status": "skipped", "reason": "not picked (--only)"}
        elif left < 20:
            result = {"status": "skipped", "reason": f"out of budget ({left:.0f} s left of {budget_s:.0f})"}
        else:
            result = run_one(run.name, min(DRY_CAP_S if ctx.dry else run.cap_s, left), ctx)
        report["runs"][run.name] = result
        report["total_s"] = time.perf_counter() - began
        report["summary"] = summary(report["runs"])
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"{run.name}: {result['status']} ({result.get('seconds', 0):.1f} s)", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny models on the CPU: checks the code paths")
    parser.add_argument("--out", type=Path, help="results folder (default $OUT, else bench/out/gpu-quick)")
    parser.add_argument("--only", nargs="+", choices=list(BY_NAME), help="these runs only (default all)")
    parser.add_argument(
        "--budget-s", type=float, help=f"for all runs together (default {BUDGET_S}; a dry run's {DRY_BUDGET_S})"
    )
    parser.add_argument("--work", type=Path, help="models and homes (default a new temporary folder)")
    parser.add_argument("--child", choices=list(BY_NAME), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.budget_s is not None and args.budget_s < 0:
        parser.error("--budget-s must be >= 0")
    out = args.out or Path(os.environ.get("OUT") or REPO / "bench" / "out" / "gpu-quick")
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="genfoundry-gpu-quick-"))
    ctx = Context(dry=args.dry_run, work=work, log=out / "gpu_quick.log")
    if args.child:
        print(json.dumps(child(args.child, ctx)))
        return 0
    budget_s = args.budget_s if args.budget_s is not None else DRY_BUDGET_S if ctx.dry else BUDGET_S
    report = run_all(args.only or list(BY_NAME), ctx, out, budget_s)
    failed = [name for name, result in report["runs"].items() if result["status"] in ("error", "timeout")]
    print(f"results: {out / 'gpu_quick.json'}; log: {ctx.log}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
