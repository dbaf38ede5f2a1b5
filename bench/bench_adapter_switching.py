"""Adapter switching, in pure arms through the real server: one adapter on every request vs a different adapter
on every request (cycling through --resident adapters, all loaded), in alternating blocks so load drift hits both
alike. Goal: p50 ratio (switching / one adapter) ≤ 1.10; exits 1 when missed. Next to it the per-switch cost in ms.

More adapters than fit: the image engine keeps every adapter it has loaded (it unloads one only when it is
deleted), so no request through the server evicts. The eviction arm therefore runs in process on an ImageEngine:
each request loads its adapter from the file and unloads it afterwards, which is what every request pays once
more adapters are in rotation than a bounded cache holds; its ratio and per-miss cost are context, not the goal.
For scale, reloading the whole pipeline and its adapter per request, in process."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from functools import partial
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
from genfoundry.inference.image import ImageEngine, ImageJob, LoraSpec
from genfoundry.inference.loader import BaseModelSpec
from genfoundry.inference.thread_plan import available_cores, plan_threads
from genfoundry.models.random_lora import make_lora_file

GOAL = 1.10


def http_arms(
    url: str, adapter_ids: list[str], body: dict[str, object], rounds: int, block: int
) -> tuple[list[float], list[float]]:
    """Seconds per request: one adapter throughout, and a different adapter on every request."""
    one, switching = [], []
    with httpx.Client(base_url=url, timeout=600) as client:

        def request(adapter_id: str) -> None:
            client.post("/v1/images/generations", json={**body, "model": adapter_id}).raise_for_status()

        for adapter_id in adapter_ids * 2:  # warm: every adapter loaded once
            request(adapter_id)
        turn = 0
        for round_ in range(rounds):
            for arm in ("one", "switching") if round_ % 2 == 0 else ("switching", "one"):
                if arm == "one":
                    request(adapter_ids[0])  # the block's first request may switch from the last one: untimed
                    one += [timed(partial(request, adapter_ids[0])) for _ in range(block)]
                else:
                    for _ in range(block):
                        turn += 1  # never adapter_ids[0] twice in a row: the "one" block ended on it
                        switching.append(timed(partial(request, adapter_ids[turn % len(adapter_ids)])))
    return one, switching


def eviction_arms(
    device: str, loras: list[LoraSpec], job: ImageJob, rounds: int, block: int
) -> tuple[list[float], list[float]]:
    """In process: one adapter kept loaded vs each request loading its adapter and unloading it after."""
    engine = ImageEngine(
        device=device,
        dtype=job.base.dtype,
        memory_budget_bytes=16 * 1024**3,
        max_queue=4,
        max_batch_size=1,
        batch_timeout_s=0,
        threads=plan_threads(cores=available_cores(), job_processes=1).image,  # as the server plans them
    )
    one, missing = [], []

    def generate(lora: LoraSpec) -> None:
        engine.generate_sync(replace(job, loras=(lora,)))

    def miss(lora: LoraSpec) -> None:
        generate(lora)
        engine.unload_adapter(lora.id, wait=True)

    try:
        generate(loras[0])
        miss(loras[1])
        for round_ in range(rounds):
            for arm in ("one", "miss") if round_ % 2 == 0 else ("miss", "one"):
                if arm == "one":
                    generate(loras[0])  # reload it if the miss arm went first
                    one += [timed(partial(generate, loras[0])) for _ in range(block)]
                else:
                    missing += [timed(partial(miss, loras[1 + i % (len(loras) - 1)])) for i in range(block)]
    finally:
        engine.close()
    return one, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser)
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks of each arm")
    parser.add_argument("--block", type=int, default=5, help="timed requests per block")
    parser.add_argument("--resident", type=int, default=4, help="adapters the switching arm cycles through")
    parser.add_argument("--rank", type=int, default=4)
    args = parser.parse_args()

    model = prepare_model(args)
    family = "sd15" if args.sized else args.model
    names = [f"adapter-{i}" for i in range(max(2, args.resident))]
    paths = [
        make_lora_file(model.pipeline_dir, family, model.home / "bench-loras" / name, seed=i, rank=args.rank)
        for i, name in enumerate(names)
    ]
    body = {"prompt": "a red fox", "size": f"{model.size}x{model.size}", "steps": model.steps, "seed": 1}
    load_before = os.getloadavg()[0]

    with running_server(model.home, **model.env) as url:
        with httpx.Client(base_url=url, timeout=600) as client:
            ids = []
            for name, path in zip(names, paths, strict=True):
                response = client.post(
                    "/v1/models",
                    files={"file": (path.name, path.read_bytes())},
                    data={"base": model.model_id, "name": f"bench {name}"},
                )
                response.raise_for_status()
                ids.append(response.json()["id"])
        one, switching = http_arms(url, ids, body, args.rounds, args.block)

    spec = BaseModelSpec(id=model.model_id, family=family, source=str(model.pipeline_dir), dtype=model.dtype)
    job = ImageJob(spec, "a red fox", None, width=model.size, height=model.size, steps=model.steps,
                   guidance_scale=5.0, seeds=(1,))  # fmt: skip
    loras = [LoraSpec(id=name, path=str(path)) for name, path in zip(names, paths, strict=True)]
    one_in_process, missing = eviction_arms(model.device, loras, job, args.rounds, args.block)

    def reload_per_request(lora: Path) -> None:
        pipe = model.load_pipeline()
        pipe.load_lora_weights(lora, adapter_name="x")
        with torch.inference_mode():
            pipe(
                prompt="a red fox",
                width=model.size,
                height=model.size,
                num_inference_steps=model.steps,
                generator=torch.Generator(model.device).manual_seed(1),
            )
        if model.device == "cuda":
            torch.cuda.synchronize()

    reload_times = [timed(partial(reload_per_request, paths[i % 2])) for i in range(6)]
    ms = 1000
    rows: list[tuple[str, str] | Goal] = [
        ("load average (1 min) before / after", f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"),
        ("HTTP: one adapter throughout, p50", f"{p50(one) * ms:.1f} ms  ({len(one)} requests)"),
        (
            f"HTTP: a different adapter every request ({len(ids)} resident), p50",
            f"{p50(switching) * ms:.1f} ms  ({len(switching)} requests)",
        ),
        ("HTTP: cost per switch (p50 difference)", f"{(p50(switching) - p50(one)) * ms:.1f} ms"),
        goal("switching / one adapter, p50 (HTTP)", p50(switching) / p50(one), "<=", GOAL, fmt=".3f"),
        ("in process: one adapter throughout, p50", f"{p50(one_in_process) * ms:.1f} ms"),
        ("in process: load + unload the adapter every request, p50", f"{p50(missing) * ms:.1f} ms"),
        ("in process: cost per miss (eviction)", f"{(p50(missing) - p50(one_in_process)) * ms:.1f} ms"),
        ("in process: miss / one adapter, p50 (context)", f"{p50(missing) / p50(one_in_process):.3f}"),
        ("reload pipeline + adapter per request, p50", f"{p50(reload_times) * ms:.1f} ms (in process)"),
        ("ratio (reload / one adapter, HTTP)", f"{p50(reload_times) / p50(one):.2f}"),
    ]
    report(
        f"Adapter switching: {model.model_id} {model.size}x{model.size}, {model.steps} steps, rank {args.rank}", rows
    )
    return goals_exit_code([row for row in rows if isinstance(row, Goal)])


if __name__ == "__main__":
    sys.exit(main())
