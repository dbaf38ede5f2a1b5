"""Prompt router: held-out quality of the shipped head against the other head kind and two baselines (keyword
rule, zero-shot cosine to label descriptions with the same encoder), misclassified examples, and latency
through a real `genfoundry serve` (one short prompt; a list of 64) with the encoder on ONNX Runtime (as served
on a CPU: int8 weights, `router.int8_encoder`), on ONNX Runtime in float32 and on torch side by side, with the
encoder's start-up cost apart; `--busy N` keeps N other processes spinning meanwhile.

Goals, for the shipped head with its encoder as served on a CPU (ONNX Runtime): accuracy and macro-F1 >= 0.96,
image-vs-rest accuracy >= 0.97 on the held-out split; through HTTP, p50 <= 5 ms for one short prompt and <= 150 ms
for a list of 64 on a 2-core CPU. Exits 1 when any is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import httpx

from bench.common import Goal, goal, goals_exit_code, report, running_server
from genfoundry.router.baselines import ZeroShotRouter, keyword_labels
from genfoundry.router.encoder import TextEncoder
from genfoundry.router.head import ClassifierHead, default_head_dir, load_head
from genfoundry.router.train import ClassifierTrainingConfig, read_examples, scores, train_classifier

SHORT_PROMPTS = ("draw a cat", "what is uml?", "logo for my bakery", "hi there", "sequence diagram of login")
STARTUP_CODE = """
import json, time
from pathlib import Path
start = time.perf_counter()
from genfoundry.router.encoder import TextEncoder
from genfoundry.router.head import default_head_dir, load_head
head = load_head(default_head_dir())
encoder = TextEncoder(lora=head.encoder_lora, backend="{backend}", cache_dir=Path("{cache_dir}"), int8={int8})
encoder.load()
loaded = time.perf_counter()
head.predict(encoder.encode(["draw a cat"]))
print(json.dumps({{"load_s": loaded - start, "first_s": time.perf_counter() - loaded}}))
"""


def quality(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    measured = scores(truth, predicted)
    image_vs_rest = sum((t == "image") == (p == "image") for t, p in zip(truth, predicted, strict=True)) / len(truth)
    return {**measured, "image_vs_rest": image_vs_rest}


def head_labels(head: ClassifierHead, encoder: TextEncoder, texts: Sequence[str]) -> list[str]:
    return [p.label for p in head.predict(encoder.encode(list(texts)))]


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


SERVED = "shipped head, encoder on ONNX Runtime, int8 (as served)"
ONE_PROMPT_GOAL_MS, LIST_GOAL_MS = 5.0, 150.0


def measure_quality(data_dir: Path) -> tuple[list[tuple[str, str] | Goal], list[str]]:
    held = read_examples(data_dir / "heldout.jsonl")
    texts, truth = [e.text for e in held], [e.label for e in held]
    shipped = load_head(default_head_dir())
    base = TextEncoder()
    tuned = TextEncoder(lora=shipped.encoder_lora) if shipped.encoder_lora is not None else base
    shipped_kind = "contrastive LoRA + logistic" if shipped.encoder_lora is not None else "logistic (frozen)"
    results: dict[str, tuple[list[str], float]] = {}

    start = time.perf_counter()
    results[f"shipped head: {shipped_kind}"] = (head_labels(shipped, tuned, texts), time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as cache:
        for name, int8 in ((SERVED, True), ("shipped head, encoder on ONNX Runtime, float32", False)):
            served = TextEncoder(lora=shipped.encoder_lora, backend="onnx", cache_dir=Path(cache), int8=int8)
            start = time.perf_counter()
            results[name] = (head_labels(shipped, served, texts), time.perf_counter() - start)
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

    rows: list[tuple[str, str] | Goal] = [
        ("held-out examples", f"{len(held)} ({', '.join(f'{k} {truth.count(k)}' for k in sorted(set(truth)))})")
    ]
    for name, (predicted, _seconds) in results.items():
        m = quality(truth, predicted)
        rows.append(
            (
                name,
                f"accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  image-vs-rest {m['image_vs_rest']:.4f}",
            )
        )
    served = quality(truth, results[SERVED][0])
    rows += [
        goal("accuracy, shipped head as served", served["accuracy"], ">=", 0.96, fmt=".4f"),
        goal("macro-F1, shipped head as served", served["macro_f1"], ">=", 0.96, fmt=".4f"),
        goal("image-vs-rest accuracy, shipped head as served", served["image_vs_rest"], ">=", 0.97, fmt=".4f"),
    ]
    shipped_predicted = next(iter(results.values()))[0]
    probabilities = shipped.predict(tuned.encode(texts))
    wrong = [
        f"{t:>7} -> {p.label:<7} ({', '.join(f'{k} {v:.2f}' for k, v in p.scores.items())})  {text}"
        for text, t, predicted, p in zip(texts, truth, shipped_predicted, probabilities, strict=True)
        if predicted != t
    ]
    return rows, wrong


# The encoder as each server runs it: ONNX Runtime with int8 weights (as served on a CPU), the same export in
# float32 (the encoder as served before int8), and torch (the reference).
SERVED_VARIANT = "onnx int8"
VARIANTS: dict[str, dict[str, str]] = {
    SERVED_VARIANT: {"GENFOUNDRY_ROUTER__ENCODER_BACKEND": "onnx"},
    "onnx float32": {"GENFOUNDRY_ROUTER__ENCODER_BACKEND": "onnx", "GENFOUNDRY_ROUTER__INT8_ENCODER": "false"},
    "torch": {"GENFOUNDRY_ROUTER__ENCODER_BACKEND": "torch"},
}


def startup_seconds(backend: str, cache_dir: Path, *, int8: bool = False) -> dict[str, float]:
    """Import + load (+ export when the cache is cold) and the first classification, in a fresh process."""
    code = STARTUP_CODE.format(backend=backend, cache_dir=str(cache_dir), int8=int8)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def busy_processes(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` processes spinning on a core each: a machine shared with other work."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def timings(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples) * 1000:.1f} ms  p95 {percentile(samples, 95) * 1000:.1f} ms"


def measure_latency(
    requests: int, list_requests: int, list_size: int, data_dir: Path, busy: int
) -> list[tuple[str, str] | Goal]:
    """Each encoder variant behind its own `genfoundry serve`, measured in alternating rounds."""
    held = [e.text for e in read_examples(data_dir / "heldout.jsonl")]
    batch = (held * (list_size // len(held) + 1))[:list_size]
    cache_dir = Path(tempfile.mkdtemp(prefix="genfoundry-bench-encoders-"))
    rows: list[tuple[str, str] | Goal] = [
        ("load average (1 min) before the run", f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    ]
    cold = startup_seconds("onnx", cache_dir, int8=True)
    warm = startup_seconds("onnx", cache_dir, int8=True)
    reference = startup_seconds("torch", cache_dir)
    rows += [
        (
            "start-up, onnx int8, cold cache (exports)",
            f"{cold['load_s'] * 1000:.0f} ms import + load + export + check + quantize + check",
        ),
        ("start-up, onnx int8, cached export", f"{warm['load_s'] * 1000:.0f} ms import + load"),
        ("start-up, torch", f"{reference['load_s'] * 1000:.0f} ms import + load + LoRA merge"),
        (
            "first classification after start-up",
            f"onnx int8 {warm['first_s'] * 1000:.0f} ms, torch {reference['first_s'] * 1000:.0f} ms",
        ),
    ]
    single: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    lists: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with ExitStack() as stack:
        clients = {}
        for variant, variant_env in VARIANTS.items():
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="genfoundry-bench-router-")))
            env = {**variant_env, "GENFOUNDRY_ROUTER__ENCODER_CACHE_DIR": str(cache_dir)}
            url = stack.enter_context(running_server(home, log=None, **env))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=120))
            start = time.perf_counter()
            client.post("/v1/classify", json={"input": "draw a cat"}).raise_for_status()
            rows.append(
                (
                    f"first request to a fresh server, {variant}",
                    f"{(time.perf_counter() - start) * 1000:.0f} ms (waits for its preload)",
                )
            )
            for _ in range(5):  # warm-up
                client.post("/v1/classify", json={"input": SHORT_PROMPTS[0]}).raise_for_status()
            clients[variant] = client
        spinning = busy_processes(busy)
        try:
            rounds = 10
            for round_ in range(rounds):
                order = list(VARIANTS)[round_ % len(VARIANTS) :] + list(VARIANTS)[: round_ % len(VARIANTS)]
                for variant in order:
                    client = clients[variant]
                    for i in range(requests // rounds):
                        start = time.perf_counter()
                        prompt = SHORT_PROMPTS[i % len(SHORT_PROMPTS)]
                        client.post("/v1/classify", json={"input": prompt}).raise_for_status()
                        single[variant].append(time.perf_counter() - start)
                    for _ in range(max(1, list_requests // rounds)):
                        start = time.perf_counter()
                        response = client.post("/v1/classify", json={"input": batch})
                        response.raise_for_status()
                        lists[variant].append(time.perf_counter() - start)
                        assert len(response.json()["data"]) == list_size
        finally:
            for process in spinning:
                process.kill()
                process.wait()
    shutil.rmtree(cache_dir, ignore_errors=True)
    rows.append(("other processes spinning during the rounds", str(busy)))
    for variant in VARIANTS:
        rows.append((f"one short prompt, HTTP, {variant} ({len(single[variant])} requests)", timings(single[variant])))
    for variant in VARIANTS:
        rows.append(
            (f"a list of {list_size}, HTTP, {variant} ({len(lists[variant])} requests)", timings(lists[variant]))
        )
    served_one, served_list = statistics.median(single[SERVED_VARIANT]), statistics.median(lists[SERVED_VARIANT])
    for variant in VARIANTS:
        if variant != SERVED_VARIANT:
            rows.append(
                (
                    f"p50 ratio {variant} / {SERVED_VARIANT}",
                    f"one prompt {statistics.median(single[variant]) / served_one:.2f}x, "
                    f"list {statistics.median(lists[variant]) / served_list:.2f}x",
                )
            )
    rows += [
        goal(f"one short prompt through HTTP, {SERVED_VARIANT}, p50", served_one * 1000, "<=", ONE_PROMPT_GOAL_MS,
             unit=" ms", fmt=".1f"),
        goal(f"a list of {list_size} through HTTP, {SERVED_VARIANT}, p50", served_list * 1000, "<=", LIST_GOAL_MS,
             unit=" ms", fmt=".1f"),
        ("load average (1 min) after the run", f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"),
    ]  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--list-requests", type=int, default=40)
    parser.add_argument("--list-size", type=int, default=64)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--busy", type=int, default=0, help="processes spinning on a core each while measuring")
    args = parser.parse_args()
    data_dir = default_head_dir()
    goals: list[Goal] = []
    if not args.skip_quality:
        rows, wrong = measure_quality(data_dir)
        goals += [row for row in rows if isinstance(row, Goal)]
        report("Prompt router quality, held-out split (bench_router.py)", rows)
        print(f"\n  misclassified by the shipped head ({len(wrong)}):")
        for line in wrong:
            print(f"    {line}")
    if not args.skip_latency:
        latency = measure_latency(args.requests, args.list_requests, args.list_size, data_dir, args.busy)
        goals += [row for row in latency if isinstance(row, Goal)]
        report("Prompt router latency through genfoundry serve (bench_router.py)", latency)
    return goals_exit_code(goals)


if __name__ == "__main__":
    sys.exit(main())
