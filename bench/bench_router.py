"""Prompt router: held-out quality of the shipped head against the other head kind and two baselines (keyword
rule, zero-shot cosine to label descriptions with the same encoder), misclassified examples, and latency
through a real `genfoundry serve` (one short prompt; a list of 64), with the encoder's start-up cost apart.

Targets (issue 5): accuracy and macro-F1 >= 0.96, image-vs-rest accuracy >= 0.97 on the held-out split;
p50 <= 15 ms for one short prompt and <= 150 ms for a list of 64 on a 2-core CPU.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import httpx

from bench.common import report, running_server
from genfoundry.router.baselines import ZeroShotRouter, keyword_labels
from genfoundry.router.encoder import TextEncoder
from genfoundry.router.head import ClassifierHead, default_head_dir, load_head
from genfoundry.router.train import ClassifierTrainingConfig, read_examples, scores, train_classifier

SHORT_PROMPTS = ("draw a cat", "what is uml?", "logo for my bakery", "hi there", "sequence diagram of login")
STARTUP_CODE = """
import json, time
start = time.perf_counter()
from genfoundry.router.encoder import TextEncoder
from genfoundry.router.head import default_head_dir, load_head
head = load_head(default_head_dir())
encoder = TextEncoder(lora=head.encoder_lora)
encoder.load()
loaded = time.perf_counter()
head.predict(encoder.encode(["draw a cat"]))
print(json.dumps({"load_s": loaded - start, "first_s": time.perf_counter() - loaded}))
"""


def quality(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    measured = scores(truth, predicted)
    image_vs_rest = sum((t == "image") == (p == "image") for t, p in zip(truth, predicted, strict=True)) / len(truth)
    return {**measured, "image_vs_rest": image_vs_rest}


def head_labels(head: ClassifierHead, encoder: TextEncoder, texts: Sequence[str]) -> list[str]:
    return [p.label for p in head.predict(encoder.encode(list(texts)))]


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def measure_quality(data_dir: Path) -> tuple[list[tuple[str, str]], list[str]]:
    held = read_examples(data_dir / "heldout.jsonl")
    texts, truth = [e.text for e in held], [e.label for e in held]
    shipped = load_head(default_head_dir())
    base = TextEncoder()
    tuned = TextEncoder(lora=shipped.encoder_lora) if shipped.encoder_lora is not None else base
    shipped_kind = "contrastive LoRA + logistic" if shipped.encoder_lora is not None else "logistic (frozen)"
    results: dict[str, tuple[list[str], float]] = {}

    start = time.perf_counter()
    results[f"shipped head: {shipped_kind}"] = (head_labels(shipped, tuned, texts), time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        # The other head kind, trained here from train.jsonl by the same recipe (C chosen on its validation split).
        other_tuning: Literal["frozen", "contrastive_lora"] = (
            "frozen" if shipped.encoder_lora is not None else "contrastive_lora"
        )
        trained = train_classifier(
            ClassifierTrainingConfig(encoder_tuning=other_tuning), data_dir / "train.jsonl", Path(tmp), encoder=base
        )
        assert trained.head is not None
        other_encoder = base if trained.head.encoder_lora is None else TextEncoder(lora=trained.head.encoder_lora)
        start = time.perf_counter()
        name = "other head: logistic (frozen)" if other_tuning == "frozen" else "other head: contrastive LoRA"
        results[name] = (head_labels(trained.head, other_encoder, texts), time.perf_counter() - start)
    start = time.perf_counter()
    results["baseline: keyword rule"] = (keyword_labels(texts), time.perf_counter() - start)
    start = time.perf_counter()
    results["baseline: zero-shot cosine"] = (ZeroShotRouter(base).predict(texts), time.perf_counter() - start)

    rows = [("held-out examples", f"{len(held)} ({', '.join(f'{k} {truth.count(k)}' for k in sorted(set(truth)))})")]
    for name, (predicted, _seconds) in results.items():
        m = quality(truth, predicted)
        rows.append(
            (
                name,
                f"accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  image-vs-rest {m['image_vs_rest']:.4f}",
            )
        )
    shipped_predicted = next(iter(results.values()))[0]
    probabilities = shipped.predict(tuned.encode(texts))
    wrong = [
        f"{t:>7} -> {p.label:<7} ({', '.join(f'{k} {v:.2f}' for k, v in p.scores.items())})  {text}"
        for text, t, predicted, p in zip(texts, truth, shipped_predicted, probabilities, strict=True)
        if predicted != t
    ]
    return rows, wrong


def measure_latency(requests: int, list_requests: int, list_size: int, data_dir: Path) -> list[tuple[str, str]]:
    startup = json.loads(
        subprocess.run([sys.executable, "-c", STARTUP_CODE], capture_output=True, text=True, check=True).stdout
    )
    held = [e.text for e in read_examples(data_dir / "heldout.jsonl")]
    batch = (held * (list_size // len(held) + 1))[:list_size]
    rows = [
        ("load average (1 min) before the run", f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"),
        ("encoder start-up, fresh process", f"{startup['load_s'] * 1000:.0f} ms import + load (LoRA merged)"),
        ("first classification after that", f"{startup['first_s'] * 1000:.0f} ms"),
    ]
    home = Path(tempfile.mkdtemp(prefix="genfoundry-bench-router-"))
    with running_server(home) as url, httpx.Client(base_url=url, timeout=120) as client:
        start = time.perf_counter()
        client.post("/v1/classify", json={"input": "draw a cat"}).raise_for_status()
        rows.append(("first request to a fresh server", f"{(time.perf_counter() - start) * 1000:.0f} ms (loads it)"))
        for _ in range(5):  # warm-up
            client.post("/v1/classify", json={"input": SHORT_PROMPTS[0]}).raise_for_status()
        single = []
        for i in range(requests):
            start = time.perf_counter()
            client.post("/v1/classify", json={"input": SHORT_PROMPTS[i % len(SHORT_PROMPTS)]}).raise_for_status()
            single.append(time.perf_counter() - start)
        lists = []
        for _ in range(list_requests):
            start = time.perf_counter()
            response = client.post("/v1/classify", json={"input": batch})
            response.raise_for_status()
            lists.append(time.perf_counter() - start)
            assert len(response.json()["data"]) == list_size
    # The same work in this process, without HTTP, right after: how much of the above is the model itself.
    head = load_head(default_head_dir())
    encoder = TextEncoder(lora=head.encoder_lora)
    head.predict(encoder.encode(list(SHORT_PROMPTS)))
    local_single, local_lists = [], []
    for i in range(requests):
        start = time.perf_counter()
        head.predict(encoder.encode([SHORT_PROMPTS[i % len(SHORT_PROMPTS)]]))
        local_single.append(time.perf_counter() - start)
    for _ in range(list_requests):
        start = time.perf_counter()
        head.predict(encoder.encode(batch))
        local_lists.append(time.perf_counter() - start)
    rows.append(
        (
            f"one short prompt, HTTP ({requests} requests)",
            f"p50 {statistics.median(single) * 1000:.1f} ms  p95 {percentile(single, 95) * 1000:.1f} ms",
        )
    )
    rows.append(
        (
            f"a list of {list_size}, HTTP ({list_requests} requests)",
            f"p50 {statistics.median(lists) * 1000:.1f} ms  p95 {percentile(lists, 95) * 1000:.1f} ms",
        )
    )
    for name, samples in (("one short prompt", local_single), (f"a list of {list_size}", local_lists)):
        rows.append(
            (
                f"{name}, in-process encode + head",
                f"p50 {statistics.median(samples) * 1000:.1f} ms  p95 {percentile(samples, 95) * 1000:.1f} ms",
            )
        )
    rows.append(("load average (1 min) after the run", f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--list-requests", type=int, default=40)
    parser.add_argument("--list-size", type=int, default=64)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    data_dir = default_head_dir()
    if not args.skip_quality:
        rows, wrong = measure_quality(data_dir)
        report("Prompt router quality, held-out split (bench_router.py)", rows)
        print(f"\n  misclassified by the shipped head ({len(wrong)}):")
        for line in wrong:
            print(f"    {line}")
    if not args.skip_latency:
        rows = measure_latency(args.requests, args.list_requests, args.list_size, data_dir)
        report("Prompt router latency through genfoundry serve (bench_router.py)", rows)


if __name__ == "__main__":
    main()
