"""Adapter switching, in pure arms through the real server: one adapter on every request vs a different adapter
on every request (cycling through --resident adapters, all loaded), in alternating blocks so load drift hits both
alike. Goal: p50 ratio (switching / one adapter) ≤ 1.10; exits 1 when missed. Next to it the per-switch cost in ms.

More adapters than fit: the server keeps --resident adapters per base (GENFOUNDRY_MAX_RESIDENT_ADAPTERS), and a
third arm cycles through one adapter more than that, so with least-recently-used eviction every one of its requests
unloads an adapter and loads its own from the file (the server's eviction counter is read to check that it did).
Its per-switch cost with eviction is context, not the goal. For scale, reloading the whole pipeline and its adapter
per request, in process.

--hotswap-max-rank N: the server swaps every adapter into one LoRA slot of rank N instead of keeping them side by side
(GENFOUNDRY_IMAGE_SPEED__HOTSWAP_MAX_RANK; docs/deploy.md); "resident" adapters are then the converted weights cached
in memory, and a miss reads the file again. --compile adds GENFOUNDRY_IMAGE_SPEED__COMPILE (needs hotswap to avoid
recompiling per switch); the compile warm-up the server measured is printed apart."""

from __future__ import annotations

import argparse
import os
import sys
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
from genfoundry.models.random_lora import make_lora_file

GOAL = 1.10
EVICTED_TOTAL = "genfoundry_engine_adapters_evicted_total"


def evictions(client: httpx.Client) -> int:
    """The image engine's adapter evictions so far, from /metrics."""
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name == EVICTED_TOTAL:
            return int(float(value))
    raise RuntimeError(f"{EVICTED_TOTAL} is not in /metrics")


def http_arms(
    client: httpx.Client, adapter_ids: list[str], resident: int, body: dict[str, object], rounds: int, block: int
) -> tuple[dict[str, list[float]], int]:
    """Seconds per request per arm: one adapter throughout, a different one of `resident` loaded adapters every
    request, and a different one of `resident + 1` every request (each a miss); and the evictions the last arm
    caused."""

    def request(adapter_id: str) -> None:
        client.post("/v1/images/generations", json={**body, "model": adapter_id}).raise_for_status()

    fitting, rotating = adapter_ids[:resident], adapter_ids[: resident + 1]
    for adapter_id in rotating * 2:  # warm: every adapter loaded once, the pipeline's first calls done
        request(adapter_id)
    times: dict[str, list[float]] = {"one": [], "switching": [], "evicting": []}
    evicted = 0
    arms = ("one", "switching", "evicting")
    for round_ in range(rounds):
        for arm in arms[round_ % 3 :] + arms[: round_ % 3]:
            if arm == "one":
                request(fitting[0])  # may load or switch after another block: untimed
                times[arm] += [timed(partial(request, fitting[0])) for _ in range(block)]
            elif arm == "switching":
                for adapter_id in fitting:  # untimed: all of them resident again after an evicting block
                    request(adapter_id)
                times[arm] += [timed(partial(request, fitting[i % resident])) for i in range(block)]
            else:
                for adapter_id in rotating:  # untimed: from here on every request in the cycle is a miss
                    request(adapter_id)
                before = evictions(client)
                times[arm] += [timed(partial(request, rotating[i % (resident + 1)])) for i in range(block)]
                evicted += evictions(client) - before
    return times, evicted


def compile_warmup_s(client: httpx.Client, model_id: str) -> float:
    """The seconds of batches during which the server compiled `model_id`'s denoiser, from /metrics."""
    wanted = f'genfoundry_compile_warmup_seconds{{model="{model_id}"}}'
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == wanted:
            return float(value)
    raise RuntimeError(f"{wanted} is not in /metrics")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser)
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks of each arm")
    parser.add_argument("--block", type=int, default=5, help="timed requests per block")
    parser.add_argument(
        "--resident", type=int, default=4, help="adapters kept loaded per base; the switching arm cycles through them"
    )
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--hotswap-max-rank", type=int, default=0, help="> 0: LoRA hotswap into a slot of this rank")
    parser.add_argument("--compile", action="store_true", help="torch.compile the denoiser (inductor)")
    args = parser.parse_args()

    model = prepare_model(args)
    family = "sd15" if args.sized else args.model
    resident = max(2, args.resident)
    names = [f"adapter-{i}" for i in range(resident + 1)]
    paths = [
        make_lora_file(model.pipeline_dir, family, model.home / "bench-loras" / name, seed=i, rank=args.rank)
        for i, name in enumerate(names)
    ]
    body = {"prompt": "a red fox", "size": f"{model.size}x{model.size}", "steps": model.steps, "seed": 1}
    load_before = os.getloadavg()[0]

    env = {
        **model.env,
        "GENFOUNDRY_MAX_RESIDENT_ADAPTERS": str(resident),
        "GENFOUNDRY_IMAGE_SPEED__HOTSWAP_MAX_RANK": str(args.hotswap_max_rank),
        "GENFOUNDRY_IMAGE_SPEED__COMPILE": str(args.compile).lower(),
    }
    with running_server(model.home, **env) as url, httpx.Client(base_url=url, timeout=600) as client:
        ids = []
        for name, path in zip(names, paths, strict=True):
            response = client.post(
                "/v1/models",
                files={"file": (path.name, path.read_bytes())},
                data={"base": model.model_id, "name": f"bench {name}"},
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
        times, evicted = http_arms(client, ids, resident, body, args.rounds, args.block)
        warmup_s = compile_warmup_s(client, model.model_id)
    one, switching, evicting = times["one"], times["switching"], times["evicting"]

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
    mode = f"hotswap into rank {args.hotswap_max_rank}" if args.hotswap_max_rank else "side by side"
    rows: list[tuple[str, str] | Goal] = [
        ("load average (1 min) before / after", f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"),
        ("adapters", mode + (", denoiser compiled" if args.compile else "")),
        ("compile warm-up (server's batches that compiled, untimed arms)", f"{warmup_s:.1f} s"),
        ("HTTP: one adapter throughout, p50", f"{p50(one) * ms:.1f} ms  ({len(one)} requests)"),
        (
            f"HTTP: a different adapter every request ({resident} resident), p50",
            f"{p50(switching) * ms:.1f} ms  ({len(switching)} requests)",
        ),
        ("HTTP: cost per switch, resident (p50 difference)", f"{(p50(switching) - p50(one)) * ms:.1f} ms"),
        goal("switching / one adapter, p50 (HTTP)", p50(switching) / p50(one), "<=", GOAL, fmt=".3f"),
        (
            f"HTTP: a different adapter every request ({resident + 1} in rotation, {resident} fit), p50",
            f"{p50(evicting) * ms:.1f} ms  ({len(evicting)} requests, {evicted} evictions)",
        ),
        ("HTTP: cost per switch with eviction (p50 difference)", f"{(p50(evicting) - p50(one)) * ms:.1f} ms"),
        ("HTTP: evicting / one adapter, p50 (context)", f"{p50(evicting) / p50(one):.3f}"),
        ("reload pipeline + adapter per request, p50", f"{p50(reload_times) * ms:.1f} ms (in process)"),
        ("ratio (reload / one adapter, HTTP)", f"{p50(reload_times) / p50(one):.2f}"),
    ]
    report(
        f"Adapter switching: {model.model_id} {model.size}x{model.size}, {model.steps} steps, rank {args.rank}", rows
    )
    return goals_exit_code([row for row in rows if isinstance(row, Goal)])


if __name__ == "__main__":
    sys.exit(main())
