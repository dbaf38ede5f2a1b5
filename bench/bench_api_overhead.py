"""API overhead: sequential POST /v1/images/generations through a real server vs the same diffusers
pipeline called in-process (same model, seed, size, steps, and the torch threads the server plans for its image
engine, inference/thread_plan.py), at each shape asked for (tiny models: 128x128 with
10 steps and 64x64 with 4, where the fixed per-request cost weighs most). The requests carry an API key, as a
served API's do, so authenticating one is part of the cost (single-user mode is for loopback use). Goal: p50 ratio
≤ 1.10 at every shape; exits 1 when one misses it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx
import torch

from bench.common import (
    Goal,
    add_model_args,
    goal,
    goals_exit_code,
    p50,
    prepare_model,
    report,
    running_server,
    timed,
)
from genfoundry.config import Settings
from genfoundry.inference.thread_plan import available_cores, plan_threads
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database

GOAL = 1.10
TINY_SHAPES = ("128x10", "64x4")


def parse_shape(text: str) -> tuple[int, int]:
    """ "SIZExSTEPS" (e.g. 128x10) -> (size, steps)."""
    size, steps = text.split("x")
    return int(size), int(steps)


def create_key(home: Path) -> str:
    """A new API key on `home` (the server then requires one)."""
    with open_database(Settings(home=home)) as session:
        key = users_repo.create_key(session=session, name="bench").key
        session.commit()
    return key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_args(parser)
    parser.add_argument("--requests", type=int, default=30, help="per shape, after 3 warm-ups")
    parser.add_argument(
        "--shapes",
        nargs="+",
        help=f"SIZExSTEPS each; default {' '.join(TINY_SHAPES)} on the tiny models, --size/--steps with --sized",
    )
    args = parser.parse_args()

    model = prepare_model(args)
    threads = plan_threads(cores=available_cores(), job_processes=1).image
    torch.set_num_threads(threads)  # torch's default (one per core) would slow the baseline, not the API, under load
    if args.shapes:
        shapes = [parse_shape(text) for text in args.shapes]
    elif args.sized:
        shapes = [(model.size, model.steps)]
    else:
        shapes = [parse_shape(text) for text in TINY_SHAPES]
    pipe = model.load_pipeline()
    prompt, guidance = "a red fox in the snow", 5.0
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, str] | Goal] = []
    headers = {"Authorization": f"Bearer {create_key(model.home)}"}
    with (
        running_server(model.home, log=None, **model.env) as url,
        httpx.Client(base_url=url, timeout=600, headers=headers) as client,
    ):
        for size, steps in shapes:
            body = {
                "model": model.model_id,
                "prompt": prompt,
                "size": f"{size}x{size}",
                "steps": steps,
                "seed": 1,
                "guidance_scale": guidance,
                "response_format": "url",
            }

            def direct(size: int = size, steps: int = steps) -> None:
                with torch.inference_mode():
                    pipe(
                        prompt=prompt,
                        width=size,
                        height=size,
                        num_inference_steps=steps,
                        guidance_scale=guidance,
                        generator=torch.Generator(model.device).manual_seed(1),
                    )
                if model.device == "cuda":
                    torch.cuda.synchronize()

            def api(body: dict[str, object] = body) -> None:
                client.post("/v1/images/generations", json=body).raise_for_status()

            for _ in range(3):  # warm both paths: model load, first-call allocations
                api()
                direct()
            api_times, direct_times = [], []
            for _ in range(args.requests):  # interleaved, so drift in machine load hits both alike
                api_times.append(timed(api))
                direct_times.append(timed(direct))
            shape = f"{size}x{size}, {steps} steps"
            rows += [
                (f"{shape}: in-process diffusers p50", f"{p50(direct_times) * 1000:.1f} ms"),
                (f"{shape}: HTTP API p50", f"{p50(api_times) * 1000:.1f} ms"),
                (
                    f"{shape}: per-request cost (API - in-process)",
                    f"{(p50(api_times) - p50(direct_times)) * 1000:.1f} ms",
                ),
                goal(f"{shape}: API / in-process, p50", p50(api_times) / p50(direct_times), "<=", GOAL, fmt=".3f"),
            ]
    rows.insert(0, ("load average (1 min) before / after", f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"))
    report(f"API overhead: {model.model_id}, {args.requests} requests per shape, {threads} torch threads", rows)
    return goals_exit_code([row for row in rows if isinstance(row, Goal)])


if __name__ == "__main__":
    sys.exit(main())
