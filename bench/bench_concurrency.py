"""Concurrency: 8 concurrent requests vs the same 8 sequentially through the real server; prints the
throughput ratio (target ≥ 1.5 from micro-batching)."""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import add_model_args, p50, prepare_model, report, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_args(parser)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    model = prepare_model(args)
    bodies = [
        {
            "model": model.model_id,
            "prompt": f"a red fox, picture {i}",
            "size": f"{model.size}x{model.size}",
            "steps": model.steps,
            "seed": i,
        }
        for i in range(args.concurrency)
    ]
    with (
        running_server(model.home, **model.env) as url,
        httpx.Client(base_url=url, timeout=900, limits=httpx.Limits(max_connections=32)) as client,
        ThreadPoolExecutor(args.concurrency) as pool,
    ):

        def send(body: dict[str, object]) -> None:
            client.post("/v1/images/generations", json=body).raise_for_status()

        for body in bodies[:2]:
            send(body)
        sequential, concurrent = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for body in bodies:
                send(body)
            sequential.append(time.perf_counter() - start)
            start = time.perf_counter()
            list(pool.map(send, bodies))
            concurrent.append(time.perf_counter() - start)
        metrics = client.get("/metrics").text
    batches = next(line for line in metrics.splitlines() if line.startswith("genfoundry_engine_batches_served_total"))
    n = args.concurrency
    ratio = p50(sequential) / p50(concurrent)
    report(
        f"Concurrency: {model.model_id} {model.size}x{model.size}, {model.steps} steps, {n} requests x {args.rounds}",
        [
            ("sequential, p50 wall", f"{p50(sequential):.2f} s ({n / p50(sequential):.2f} images/s)"),
            ("concurrent, p50 wall", f"{p50(concurrent):.2f} s ({n / p50(concurrent):.2f} images/s)"),
            ("throughput ratio (concurrent / sequential)", f"{ratio:.2f}  (target >= 1.5)"),
            ("pipeline calls in the whole run", batches.split()[-1]),
        ],
    )


if __name__ == "__main__":
    main()
