"""Adapter switching: alternating two LoRA adapters per request vs one adapter throughout, through the real
server (target ratio ≤ 1.10); for scale, reloading the pipeline and its adapter per request, in-process."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import torch
from diffusers import DiffusionPipeline

from bench.common import make_home, p50, report, running_server, timed
from genfoundry.models.random_lora import make_lora_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    home = make_home()
    pipeline_dir = home / "models" / "tiny" / "sd15"
    loras = [make_lora_file(pipeline_dir, "sd15", home / "bench-loras" / name, seed=i) for i, name in enumerate("ab")]
    body = {"prompt": "a red fox", "size": f"{args.size}x{args.size}", "steps": args.steps, "seed": 1}

    with running_server(home) as url, httpx.Client(base_url=url, timeout=120) as client:
        ids = []
        for name, path in zip("ab", loras, strict=True):
            response = client.post(
                "/v1/models",
                files={"file": (path.name, path.read_bytes())},
                data={"base": "tiny-sd15", "name": f"bench {name}"},
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
        pipe = DiffusionPipeline.from_pretrained(pipeline_dir)
        pipe.set_progress_bar_config(disable=True)
        pipe.load_lora_weights(lora, adapter_name="x")
        with torch.inference_mode():
            pipe(
                prompt="a red fox",
                width=args.size,
                height=args.size,
                num_inference_steps=args.steps,
                generator=torch.Generator("cpu").manual_seed(1),
            )

    reload_times = [timed(lambda i=i: reload_per_request(loras[i % 2])) for i in range(max(6, args.requests // 5))]
    ratio = p50(alternating) / p50(same)
    report(
        f"Adapter switching: tiny-sd15 {args.size}x{args.size}, {args.steps} steps",
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
