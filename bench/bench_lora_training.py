"""LoRA training: the recipe (training/lora.py: VAE latents and text embeddings cached once, then the encoders
released) vs a reference loop that encodes every image and prompt at every step, as diffusers'
train_text_to_image_lora.py does (bench/reference_lora_loop.py). Same model, images, captions, resolution,
batch, steps, rank, target modules and precision; every run in a fresh subprocess, so peak memory compares
(CPU: peak RSS; CUDA: torch.cuda.max_memory_allocated). Goal (the compass's): steps/s ratio >= 1.5 at a
peak-memory ratio <= 0.7, measured where the VAE and text encoders are the share of the parameters they are in SD
1.5 (~20%): `--size sd15` (on a CPU at 256 px with a few steps); exits 1 when either is missed.

steps/s counts the training steps after --warmup only (no model load, no caching). The recipe's one-off
caching (encode_dataset) and both loops' end-to-end times (load, caching, all steps, saving) are reported
next to it, with the run length after which caching has paid for itself.

Sizes: "tiny" (models/tiny.py; per-call overhead dominates, says little), "medium" (SD 1.5's
layout with channel widths /5 in the UNet and /4 in the VAE and a 6-layer CLIP text tower 192 wide, at 256 px,
43M parameters; on a 2-core x86 CPU its VAE encode + text encode take ~30% of a reference step's time, against
31-35% for an SD 1.5-sized pipeline at 512 px on the same CPU; but its weights are ~20 MiB of a ~1 GiB peak RSS, so
it cannot show the memory goal), "sd15" (SD 1.5-sized, the default: 1.07B parameters, VAE + text encoder 19%; on
a CPU at 256 px with a few steps) and "flux" (FLUX.1-dev-sized, ~34 GB in bf16, GPU).
Each run prints the reference step's time and FLOP shares, and the SD 1.5-sized FLOP shares for comparison.

On a CPU shared with other work, pass --threads 1: with torch's default of one thread per core, every parallel
region waits for a descheduled thread and steps slowed ~20x (unevenly) under a load of 8 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.common import Goal, goal, goals_exit_code, report

KINDS = ("recipe", "reference")
SIZES = ("tiny", "medium", "sd15", "flux")
STEPS_PER_S_GOAL, MEMORY_GOAL = 1.5, 0.7
DEFAULT_RESOLUTION = {"tiny": 64, "medium": 256, "sd15": 512, "flux": 512}
DEFAULT_STEPS = {"tiny": 12, "medium": 20, "sd15": 40, "flux": 20}
_CAPTION_WORDS = ("red car", "green tree", "yellow flower", "white bottle", "old man", "small house", "fox", "bird")


@dataclass(frozen=True)
class RunSpec:
    """One child run: which loop, on which pipeline and data, with which recipe hyperparameters."""

    kind: str
    family: str
    base: str
    dataset: str
    output_dir: str
    params: dict[str, Any]
    warmup: int
    threads: int | None = None  # torch intra-op threads; None keeps torch's default (one per core)


def make_dataset(folder: Path, count: int, resolution: int, *, seed: int = 0) -> Path:
    """`count` square photo-like PNGs (colour gradients plus noise) at `resolution`, each with its own caption."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0.0, 1.0, resolution, dtype=np.float32)
    for i in range(count):
        low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        gradient = low + np.add.outer(ramp, ramp)[..., None] / 2 * (high - low)
        pixels = np.clip(gradient + rng.normal(0, 12, gradient.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:03d}.png")
        caption = f"a photo of a {_CAPTION_WORDS[i % len(_CAPTION_WORDS)]}, picture {i}"
        (folder / f"img_{i:03d}.txt").write_text(caption, encoding="utf-8")
    return folder


def build_model(size: str, family: str, out_dir: Path) -> Path:
    """The random-weight pipeline of `size` in `out_dir`; reused when one is already there."""
    if (out_dir / "model_index.json").exists():
        return out_dir
    import torch

    cuda = torch.cuda.is_available()
    if size == "tiny":
        from genfoundry.models.tiny import build_tiny_pipeline

        return Path(build_tiny_pipeline(family, out_dir))
    if size == "medium":
        from genfoundry.models.sized import build_sd15_medium_pipeline

        return Path(build_sd15_medium_pipeline(out_dir))
    if size == "sd15":
        from genfoundry.models.sized import build_sd15_sized_pipeline

        # fp16 on disk like the published weights; float32 on a CPU, which has no fast half-precision kernels.
        return Path(build_sd15_sized_pipeline(out_dir, dtype="float16" if cuda else "float32"))
    from genfoundry.models.sized import build_flux_sized_pipeline

    return Path(build_flux_sized_pipeline(out_dir, dtype="bfloat16" if cuda else "float32"))


def lora_params(resolution: int, steps: int, batch_size: int, rank: int | None) -> dict[str, Any]:
    """Recipe hyperparameters for a timed run: no checkpoints, samples or saved state in the way."""
    params: dict[str, Any] = {
        "max_steps": steps,
        "batch_size": batch_size,
        "resolution": resolution,
        "seed": 0,
        "checkpoint_every_n_steps": 100_000,
        "sample_every_n_steps": 0,
    }
    if rank is not None:
        params["rank"] = rank
    return params


def run_child(spec: RunSpec) -> dict[str, Any]:
    """Run one loop in a fresh Python process; its last stdout line is the JSON result."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_lora_training", "--child", json.dumps(asdict(spec))],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{spec.kind} run failed:\n{completed.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run_pairs(
    *,
    family: str,
    base: Path,
    dataset: Path,
    work_dir: Path,
    params: dict[str, Any],
    warmup: int,
    repeats: int,
    threads: int | None = None,
) -> list[dict[str, dict[str, Any]]]:
    """`repeats` rounds of both loops, alternating which goes first so drift and warm caches favour neither."""
    rounds = []
    for repeat in range(repeats):
        order = KINDS if repeat % 2 == 0 else KINDS[::-1]
        results = {}
        for kind in order:
            spec = RunSpec(
                kind=kind,
                family=family,
                base=str(base),
                dataset=str(dataset),
                output_dir=str(work_dir / f"{kind}-{repeat}"),
                params=params,
                warmup=warmup,
                threads=threads,
            )
            results[kind] = run_child(spec)
        rounds.append(results)
    return rounds


# --- the child process ------------------------------------------------------------------------------------


def _peak_memory_mib() -> float:
    """Peak device memory: CUDA allocations on a GPU, else this process's peak resident set."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_memory_mib() -> float:
    """Device memory in use now: CUDA allocations on a GPU, else this process's resident set."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.memory_allocated() / 2**20
    resident_pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _training_rates(step_ends: list[float], warmup: int) -> tuple[float, float]:
    """Steps per second after the first `warmup` steps: over their wall time, and from the median step time
    (which a burst of load from other processes on a shared machine barely moves)."""
    if not 1 <= warmup < len(step_ends):
        raise ValueError(f"need 1 <= warmup < steps; got warmup {warmup} for {len(step_ends)} steps")
    durations = [b - a for a, b in zip(step_ends[warmup - 1 :], step_ends[warmup:], strict=False)]
    return len(durations) / sum(durations), 1 / statistics.median(durations)


def child_main(spec: RunSpec) -> dict[str, Any]:
    """Run the recipe or the reference loop once in this (fresh) process and measure it."""
    import torch

    from genfoundry.training.config import LoraTrainingConfig

    if spec.threads:
        torch.set_num_threads(spec.threads)
    config = LoraTrainingConfig.from_params(spec.family, spec.base, spec.params)
    baseline = _current_memory_mib()  # after the imports, before any model
    step_ends: list[float] = []
    losses: list[float] = []
    peak = [0.0]  # read at each step's end: what runs after the last step (FLOP counting) is not training

    def record(loss: float) -> None:
        step_ends.append(time.perf_counter())
        losses.append(loss)
        peak[0] = _peak_memory_mib()

    extra: dict[str, Any] = {}
    began = time.perf_counter()
    if spec.kind == "recipe":
        from genfoundry.training import cache
        from genfoundry.training.callbacks import TrainingCallbacks
        from genfoundry.training.lora import train_lora

        encode = cache.encode_dataset
        caching = [0.0]

        def timed_encode(*args: Any, **kwargs: Any) -> Any:  # the recipe's one-off encoding, timed from outside
            start = time.perf_counter()
            try:
                return encode(*args, **kwargs)
            finally:
                caching[0] += time.perf_counter() - start

        cache.encode_dataset = timed_encode
        callbacks = TrainingCallbacks(on_step=lambda _step, _total, metrics: record(metrics["loss"]))
        train_lora(config, Path(spec.dataset), Path(spec.output_dir), callbacks)
        extra["caching_s"] = caching[0]
    else:
        from bench.reference_lora_loop import run_reference_loop

        result = run_reference_loop(
            config, Path(spec.dataset), count_flops=True, on_step=lambda _step, loss: record(loss)
        )
        extra["phase_seconds"] = result.phase_seconds
        extra["phase_flops"] = result.phase_flops
        began += result.flop_count_s  # counting FLOPs is the bench's extra, not the loop's
    ended = time.perf_counter()
    rate, median_rate = _training_rates(step_ends, spec.warmup)
    return {
        "kind": spec.kind,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "steps": len(step_ends),
        "steps_per_s": rate,
        "steps_per_s_median": median_rate,
        "end_to_end_s": ended - began,
        "first_step_done_s": step_ends[0] - began,
        "peak_mib": peak[0],
        "baseline_mib": baseline,
        "loss_mean": statistics.fmean(losses),
        **extra,
    }


# --- the report -------------------------------------------------------------------------------------------


def sd15_sized_flop_shares(resolution: int, batch_size: int, rank: int | None) -> dict[str, float]:
    """FLOP shares of the reference step for an SD 1.5-sized pipeline on the meta device (no weights)."""
    from bench.reference_lora_loop import meta_phase_flops
    from genfoundry.models.sized import sd15_sized_pipeline
    from genfoundry.training.config import LoraTrainingConfig

    pipe = sd15_sized_pipeline(device="meta")
    config = LoraTrainingConfig.from_params(
        "sd15", "meta", lora_params(resolution, steps=1, batch_size=batch_size, rank=rank)
    )
    return _shares(meta_phase_flops(config, pipe, batch_size))


def _shares(values: dict[str, float] | dict[str, int]) -> dict[str, float]:
    total = sum(values.values()) or 1
    return {name: value / total for name, value in values.items()}


def _share_text(shares: dict[str, float]) -> str:
    return f"VAE encode {shares['vae']:.1%}, text encode {shares['text']:.1%}, denoiser {shares['denoiser']:.1%}"


def _spread(values: list[float], fmt: str) -> str:
    text = format(statistics.median(values), fmt)
    if len(values) > 1:
        text += f" (min {format(min(values), fmt)}, max {format(max(values), fmt)})"
    return text


def summarize(rounds: list[dict[str, dict[str, Any]]], steps: int, warmup: int) -> list[tuple[str, str] | Goal]:
    """Report rows: rates, ratios (against the goals), memory, caching cost and the reference's component shares."""
    recipe = [r["recipe"] for r in rounds]
    reference = [r["reference"] for r in rounds]
    memory = "peak CUDA allocated" if recipe[0]["device"] == "cuda" else "peak RSS"
    rate_ratio = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(recipe, reference, strict=True)]
    median_ratio = [a["steps_per_s_median"] / b["steps_per_s_median"] for a, b in zip(recipe, reference, strict=True)]
    memory_ratio = [a["peak_mib"] / b["peak_mib"] for a, b in zip(recipe, reference, strict=True)]
    phase_time = {k: statistics.fmean(r["phase_seconds"][k] for r in reference) for k in reference[0]["phase_seconds"]}
    caching = statistics.median(r["caching_s"] for r in recipe)
    saved_per_step = 1 / statistics.median(b["steps_per_s"] for b in reference) - 1 / statistics.median(
        a["steps_per_s"] for a in recipe
    )
    break_even = f"{caching / saved_per_step:.1f} steps" if saved_per_step > 0 else "never (no per-step saving)"
    rows: list[tuple[str, str] | Goal] = [
        (
            f"recipe (cached), steps/s over steps {warmup + 1}-{steps}",
            _spread([r["steps_per_s"] for r in recipe], ".3f"),
        ),
        ("reference (encodes every step), steps/s", _spread([r["steps_per_s"] for r in reference], ".3f")),
        ("steps/s ratio (recipe / reference)", _spread(rate_ratio, ".2f")),
        ("  same, from median step times", _spread(median_ratio, ".2f")),
        (f"recipe {memory}, MiB", _spread([r["peak_mib"] for r in recipe], ".0f")),
        (f"reference {memory}, MiB", _spread([r["peak_mib"] for r in reference], ".0f")),
        (f"{memory} ratio (recipe / reference)", _spread(memory_ratio, ".2f")),
        goal("steps/s, recipe / reference (median of rounds)", statistics.median(rate_ratio), ">=", STEPS_PER_S_GOAL),
        goal(f"{memory}, recipe / reference (median of rounds)", statistics.median(memory_ratio), "<=", MEMORY_GOAL),
    ]
    if recipe[0]["device"] == "cpu":
        above = [
            (r["peak_mib"] - r["baseline_mib"], f["peak_mib"] - f["baseline_mib"])
            for r, f in zip(recipe, reference, strict=True)
        ]
        rows.append(
            (
                "  above the RSS after imports, MiB",
                f"recipe {_spread([a for a, _b in above], '.0f')}, reference {_spread([b for _a, b in above], '.0f')}",
            )
        )
    rows += [
        ("recipe one-off caching (encode_dataset), s", _spread([r["caching_s"] for r in recipe], ".2f")),
        (
            f"end to end (load, caching, {steps} steps, save), s",
            f"recipe {_spread([r['end_to_end_s'] for r in recipe], '.1f')}, "
            f"reference {_spread([r['end_to_end_s'] for r in reference], '.1f')}",
        ),
        ("caching pays for itself after", break_even),
        ("reference step shares, time", _share_text(_shares(phase_time))),
        (
            "  steps/s ratio those shares imply (1 / denoiser share)",
            f"{sum(phase_time.values()) / phase_time['denoiser']:.2f}  (same process, immune to load drift)",
        ),
        ("reference step shares, FLOPs", _share_text(_shares(reference[0]["phase_flops"]))),
        (
            "mean loss (recipe, reference)",
            f"{statistics.fmean(r['loss_mean'] for r in recipe):.4f}, "
            f"{statistics.fmean(r['loss_mean'] for r in reference):.4f}",
        ),
    ]
    return rows


def _check_args(args: argparse.Namespace) -> None:
    if args.size in ("medium", "sd15") and args.family != "sd15":
        raise SystemExit(f"--size {args.size} is an SD 1.5 pipeline; use --family sd15")
    if args.size == "flux" and args.family != "flux":
        raise SystemExit("--size flux is a FLUX pipeline; use --family flux")
    if args.warmup < 1 or args.steps <= args.warmup:
        raise SystemExit("need --warmup >= 1 and --steps > --warmup")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="sd15", choices=["sd15", "sdxl", "flux"])
    parser.add_argument("--size", default="sd15", choices=SIZES)
    parser.add_argument("--resolution", type=int, nargs="+", help="one or more; default by --size")
    parser.add_argument("--steps", type=int, help="optimizer steps per run; default by --size")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of both loops")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of steps/s")
    parser.add_argument("--rank", type=int, help="LoRA rank; default the family's")
    parser.add_argument("--model-dir", type=Path, help="build the pipeline here, or reuse the one already here")
    parser.add_argument("--no-sd15-flops", action="store_true", help="skip the SD 1.5-sized FLOP shares")
    parser.add_argument("--json", type=Path, help="also write every run's raw measurements here")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads per run (default: one per core); 1 keeps a CPU shared with other work from "
        "stalling each step's parallel regions",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(RunSpec(**json.loads(args.child)))))
        return 0
    args.steps = args.steps or DEFAULT_STEPS[args.size]
    _check_args(args)
    resolutions = args.resolution or [DEFAULT_RESOLUTION[args.size]]
    raw: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
    goals: list[Goal] = []

    with tempfile.TemporaryDirectory(prefix="genfoundry-bench-lora-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        base = build_model(args.size, args.family, args.model_dir or root / "model")
        built_s = time.perf_counter() - began
        for resolution in resolutions:
            dataset = make_dataset(root / f"data-{resolution}", args.images, resolution)
            params = lora_params(resolution, args.steps, args.batch_size, args.rank)
            rounds = run_pairs(
                family=args.family,
                base=base,
                dataset=dataset,
                work_dir=root / f"runs-{resolution}",
                params=params,
                warmup=args.warmup,
                repeats=args.repeats,
                threads=args.threads,
            )
            raw["runs"][str(resolution)] = rounds
            if args.json:
                args.json.write_text(json.dumps(raw, indent=2), encoding="utf-8")
            rows = summarize(rounds, args.steps, args.warmup)
            goals += [row for row in rows if isinstance(row, Goal)]
            if args.family == "sd15" and not args.no_sd15_flops:
                rows.append(
                    (
                        "SD 1.5-sized step shares at 512 px, FLOPs",
                        _share_text(sd15_sized_flop_shares(512, args.batch_size, args.rank)),
                    )
                )
            report(
                f"LoRA training, {args.size} {args.family}, {resolution}x{resolution}, batch {args.batch_size}, "
                f"{args.images} images, {args.steps} steps, {args.repeats} rounds, "
                f"{args.threads or 'default'} torch threads; fresh process per run "
                f"(model built in {built_s:.0f} s; load average {os.getloadavg()[0]:.1f})",
                rows,
            )
    return goals_exit_code(goals)


if __name__ == "__main__":
    sys.exit(main())
