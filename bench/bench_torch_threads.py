"""Torch threads per engine: seconds per image in process on an ImageEngine whose worker runs with torch's default
(one thread per core) against one that runs with the server's plan (inference/thread_plan.py), the two alternating
on the same model, size and seed, on whatever load the machine has (printed). Goal: the plan is never slower than
the default (p50 ratio ≤ 1.00); exits 1 when it is."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

from bench.common import Goal, add_model_args, goal, goals_exit_code, p50, prepare_model, report, timed
from genfoundry.inference.image import ImageEngine, ImageJob
from genfoundry.inference.loader import BaseModelSpec
from genfoundry.inference.thread_plan import available_cores, plan_threads

GOAL = 1.00


def engine(threads: int | None) -> ImageEngine:
    return ImageEngine(
        device="cpu",
        dtype="float32",
        memory_budget_bytes=8 * 1024**3,
        max_queue=4,
        max_batch_size=1,
        batch_timeout_s=0,
        threads=threads,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_args(parser)
    parser.add_argument("--images", type=int, default=6, help="images per arm, after one warm-up each")
    args = parser.parse_args()

    model = prepare_model(args)
    plan = plan_threads(cores=available_cores(), job_processes=1)
    spec = BaseModelSpec(id=model.model_id, family=args.model, source=str(model.pipeline_dir), dtype=model.dtype)
    job = ImageJob(
        spec, "a red fox in the snow", None, width=model.size, height=model.size, steps=model.steps,
        guidance_scale=5.0, seeds=(1,),
    )  # fmt: skip
    arms = {"torch's default": engine(None), "planned": engine(plan.image)}
    load_before = os.getloadavg()[0]
    samples: dict[str, list[float]] = {name: [] for name in arms}
    try:
        for arm in arms.values():
            arm.generate_sync(job)  # load and warm up
        for _ in range(args.images):
            for name, arm in arms.items():
                samples[name].append(timed(partial(arm.generate_sync, job)))
        threads = {name: arm.stats()["models"][spec.id]["torch_threads"] for name, arm in arms.items()}
    finally:
        for arm in arms.values():
            arm.close()
    ratio = goal(
        "planned / default, p50 s per image", p50(samples["planned"]) / p50(samples["torch's default"]), "<=", GOAL
    )
    rows: list[tuple[str, str] | Goal] = [
        ("load average (1 min) before / after", f"{load_before:.2f} / {os.getloadavg()[0]:.2f} on {plan.cores} cores"),
        ("model", f"{model.model_id}, {model.size}x{model.size}, {model.steps} steps, {args.images} images per arm"),
    ]
    for name in arms:
        per_image = ", ".join(f"{s:.2f}" for s in samples[name])
        rows.append((f"{name} ({threads[name]} threads), s per image", f"p50 {p50(samples[name]):.2f}  [{per_image}]"))
    rows.append(ratio)
    report("Torch threads per engine", rows)
    return goals_exit_code([ratio])


if __name__ == "__main__":
    sys.exit(main())
