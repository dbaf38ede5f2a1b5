"""Adapter switching: alternating two LoRA adapters per request vs one adapter throughout, through the real
server (target ratio ≤ 1.10); for scale, reloading the pipeline and its adapter per request, in-process."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import torch

from bench.common import add_model_args, p50, prepare_model, report, running_server, timed
from genfoundry.models.random_lora import make_lora_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_args(parser)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rank", type=int, default=4)
    args = parser.parse_args()

    model = prepare_model(args)
    family = "sd15" if args.sized else args.model
    loras = [
        make_lora_file(model.pipeline_dir, family, model.home / "bench-loras" / name, seed=i, rank=args.rank)
        for i, name in enumerate("ab")
    ]
    body = {"prompt": "a red fox", "size": f"{model.size}x{model.size}", "steps": model.steps, "seed": 1}

    with running_server(model.home, **model.env) as url, httpx.Client(base_url=url, timeout=600) as client:
        ids = []
        for name, path in zip("ab", loras, strict=True):
            response = client.post(
                "/v1/models",
                files={"file": (path.name, path.read_bytes())},
                data={"base": model.model_id, "name": f"bench {name}"},
            )
            response.raise_for_status()
            ids.append(response.json()["id"])

        def request(adapter_id: str) -> None:
            client.post("/v1/images/generations", json={**body, "model": adapter_id}).raise_for_status()

        for adapter_id in ids * 2:  # warm: load both adapters once
            request(adapter_id)
        same, alternating = [], []
        for i in range(args.requests):  # interleave the two patterns in the same run
            same.append(timed(lambda: request(ids[0])))
            alternating.append(timed(lambda i=i: request(ids[i % 2])))
            alternating.append(timed(lambda i=i: request(ids[(i + 1) % 2])))
            same.append(timed(lambda: request(ids[0])))

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

    reload_times = [timed(lambda i=i: reload_per_request(loras[i % 2])) for i in range(max(6, args.requests // 5))]
    ratio = p50(alternating) / p50(same)
    report(
        f"Adapter switching: {model.model_id} {model.size}x{model.size}, {model.steps} steps, rank {args.rank}",
        [
            ("one adapter throughout, p50", f"{p50(same) * 1000:.1f} ms"),
            ("alternating two adapters, p50", f"{p50(alternating) * 1000:.1f} ms"),
            ("ratio (alternating / one)", f"{ratio:.3f}  (target <= 1.10)"),
            ("reload pipeline + adapter per request, p50", f"{p50(reload_times) * 1000:.1f} ms (in-process)"),
            ("ratio (reload / one adapter)", f"{p50(reload_times) / p50(same):.2f}"),
        ],
    )


if __name__ == "__main__":
    main()
