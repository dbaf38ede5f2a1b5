"""API overhead: sequential POST /v1/images/generations through a real server vs the same diffusers
pipeline called in-process (same tiny model, seed, size, steps). Prints the p50 ratio (target ≤ 1.10)."""

from __future__ import annotations

import argparse

import httpx
import torch
from diffusers import DiffusionPipeline

from bench.common import make_home, p50, report, running_server, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sd15", choices=["sd15", "sdxl", "flux"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    home = make_home()
    pipe = DiffusionPipeline.from_pretrained(home / "models" / "tiny" / args.model)
    body = {
        "model": f"tiny-{args.model}",
        "prompt": "a red fox in the snow",
        "size": f"{args.size}x{args.size}",
        "steps": args.steps,
        "seed": 1,
        "guidance_scale": 5.0,
        "response_format": "url",
    }

    def direct() -> None:
        with torch.inference_mode():
            pipe(
                prompt=body["prompt"],
                width=args.size,
                height=args.size,
                num_inference_steps=args.steps,
                guidance_scale=5.0,
                generator=torch.Generator("cpu").manual_seed(1),
            )

    with running_server(home) as url, httpx.Client(base_url=url, timeout=120) as client:

        def api() -> None:
            response = client.post("/v1/images/generations", json=body)
            response.raise_for_status()

        for _ in range(3):  # warm both paths: model load, first-call allocations
            api()
            direct()
        api_times, direct_times = [], []
        for _ in range(args.requests):  # interleaved, so drift in machine load hits both alike
            api_times.append(timed(api))
            direct_times.append(timed(direct))

    ratio = p50(api_times) / p50(direct_times)
    report(
        f"API overhead: tiny-{args.model} {args.size}x{args.size}, {args.steps} steps, {args.requests} requests",
        [
            ("in-process diffusers p50", f"{p50(direct_times) * 1000:.1f} ms"),
            ("HTTP API p50", f"{p50(api_times) * 1000:.1f} ms"),
            ("ratio (API / in-process)", f"{ratio:.3f}  (target <= 1.10)"),
        ],
    )


if __name__ == "__main__":
    main()
