"""API overhead: sequential POST /v1/images/generations through a real server vs the same diffusers
pipeline called in-process (same model, seed, size, steps). Prints the p50 ratio (target ≤ 1.10)."""

from __future__ import annotations

import argparse

import httpx
import torch

from bench.common import add_model_args, p50, prepare_model, report, running_server, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_args(parser)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    model = prepare_model(args)
    pipe = model.load_pipeline()
    prompt, guidance = "a red fox in the snow", 5.0
    body = {
        "model": model.model_id,
        "prompt": prompt,
        "size": f"{model.size}x{model.size}",
        "steps": model.steps,
        "seed": 1,
        "guidance_scale": guidance,
        "response_format": "url",
    }

    def direct() -> None:
        with torch.inference_mode():
            pipe(
                prompt=prompt,
                width=model.size,
                height=model.size,
                num_inference_steps=model.steps,
                guidance_scale=guidance,
                generator=torch.Generator(model.device).manual_seed(1),
            )
        if model.device == "cuda":
            torch.cuda.synchronize()

    with running_server(model.home, **model.env) as url, httpx.Client(base_url=url, timeout=600) as client:

        def api() -> None:
            client.post("/v1/images/generations", json=body).raise_for_status()

        for _ in range(3):  # warm both paths: model load, first-call allocations
            api()
            direct()
        api_times, direct_times = [], []
        for _ in range(args.requests):  # interleaved, so drift in machine load hits both alike
            api_times.append(timed(api))
            direct_times.append(timed(direct))

    report(
        f"API overhead: {model.model_id} {model.size}x{model.size}, {model.steps} steps, {args.requests} requests",
        [
            ("in-process diffusers p50", f"{p50(direct_times) * 1000:.1f} ms ({1 / p50(direct_times):.2f} images/s)"),
            ("HTTP API p50", f"{p50(api_times) * 1000:.1f} ms ({1 / p50(api_times):.2f} images/s)"),
            ("ratio (API / in-process)", f"{p50(api_times) / p50(direct_times):.3f}  (target <= 1.10)"),
        ],
    )


if __name__ == "__main__":
    main()
