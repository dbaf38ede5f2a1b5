"""SFT on the shipped scenario -> PlantUML pairs: how often a base's output passes PlantUML's syntax check
before and after fine-tuning, and after a validate-and-retry loop; SFT tokens/s with LoRA vs QLoRA.

Default (CPU): --base (mini-llm; tiny-llm is the random one) is installed in a fresh home, fine-tuned with the
demo's settings (`genfoundry demo diagrams`) on plantuml_pairs.jsonl, and asked for each of the 40 held-out
scenarios through the serving path (TextService, the same chat template) before and after; each reply's
PlantUML goes through PlantUML's own check (the renderer's long-lived process). "after retry" counts a scenario
valid when any of --tries generations is (the first greedy, the rest sampled with new seeds). Then LoRA and
QLoRA (NF4 through bitsandbytes) train the same steps on the same data, each in a fresh process: tokens/s (reply
and prompt tokens, padding excluded) and peak memory (CPU: peak RSS; CUDA: torch.cuda.max_memory_allocated).
`demo_sft_validity` is the measure `scripts/train_mini_models.py llm` writes into mini-llm's model card.

--sized (for a GPU): a ~1.2B-parameter random Llama (Llama-3.2-1B's shapes), LoRA over a bf16 base vs QLoRA,
tokens/s and peak GPU memory, sequences packed to --seq-len.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from bench.common import report

TRAIN_FILE = ("diagrams", "plantuml_pairs.jsonl")
HELDOUT_FILE = ("diagrams", "plantuml_pairs_heldout.jsonl")
# Llama-3.2-1B: 1.24B parameters with tied embeddings.
SIZED: dict[str, Any] = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128_256,
}


def packaged(*parts: str) -> Path:
    return Path(str(files("genfoundry.data").joinpath(*parts)))


def heldout() -> list[dict[str, str]]:
    return [json.loads(line) for line in packaged(*HELDOUT_FILE).read_text(encoding="utf-8").splitlines() if line]


@dataclass
class Validity:
    first_try: int = 0
    within_tries: int = 0
    same_type: int = 0  # the greedy reply is valid and of the reference's diagram type
    similarity: float = 0.0  # summed difflib ratio of the greedy PlantUML to the reference
    exact: int = 0
    attempts: int = 0
    total: int = 0
    seconds: float = 0.0


def validity(services: Any, owner: str, model: str, pairs: list[dict[str, str]], *, tries: int) -> Validity:
    """Greedy first, then sampled retries, for every scenario; PlantUML's check on each reply."""
    from genfoundry.schemas import ChatCompletionRequest
    from genfoundry.text.plantuml import generate_until_valid

    def generate_for(prompt: str) -> Any:
        def generate(seed: int, temperature: float) -> str:
            request = ChatCompletionRequest.model_validate(
                {
                    "model": model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": 256,
                    "temperature": temperature,
                    "seed": seed,
                }
            )
            return str(services.text.chat_sync(owner, request).choices[0].message.content or "")

        return generate

    check = services.diagrams.renderer.check
    result = Validity(total=len(pairs))
    began = time.perf_counter()
    for pair in pairs:
        attempts = generate_until_valid(generate_for(pair["prompt"]), check, tries=tries, seed=1)
        reference = pair["completion"].strip()
        greedy = attempts[0]
        result.first_try += greedy.valid
        result.within_tries += attempts[-1].valid
        result.same_type += greedy.valid and greedy.diagram_type == check(reference).diagram_type
        result.similarity += difflib.SequenceMatcher(None, greedy.plantuml, reference).ratio()
        result.exact += greedy.plantuml == reference
        result.attempts += len(attempts)
    result.seconds = time.perf_counter() - began
    return result


def share(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.0f}%)"


# Throughput children: one training run per fresh process, so peak memory is the run's own.


def child(spec: dict[str, Any]) -> None:
    import resource

    import torch

    from genfoundry.training.callbacks import TrainingCallbacks
    from genfoundry.training.sft import train_sft
    from genfoundry.training.sft_config import SftTrainingConfig
    from genfoundry.training.sft_model import load_base_model, resolve_device

    last: dict[str, float] = {}
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    config = SftTrainingConfig(**spec["config"])
    began = time.perf_counter()
    train_sft(
        config, Path(spec["data"]), Path(spec["output"]), TrainingCallbacks(on_step=lambda s, t, m: last.update(m))
    )
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The frozen base as the run held it (4-bit weights are packed bytes), loaded again once the peak is read.
    base = load_base_model(config, *resolve_device(config))
    weights = sum(p.numel() * p.element_size() for p in base.parameters())
    print(
        json.dumps(
            {
                "tokens_per_s": last["tokens_per_s"],
                "it_per_s": last["it_per_s"],
                "peak_bytes": peak,
                "weights_bytes": weights,
                "seconds": time.perf_counter() - began,
            }
        )
    )


def run_child(config: dict[str, Any], data: Path, output: Path) -> dict[str, float]:
    spec = {"config": config, "data": str(data), "output": str(output)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_sft", "--child", json.dumps(spec)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"child run failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def throughput(base: Path, data: Path, work: Path, *, steps: int, extra: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for name, quantization in (("LoRA", "none"), ("QLoRA", "4bit")):
        config = {
            "base_source": str(base),
            "max_steps": steps,
            "checkpoint_every_n_steps": steps + 1,
            "quantization": quantization,
            **extra,
        }
        out[name] = run_child(config, data, work / name)
    return out


def throughput_rows(results: dict[str, dict[str, float]], *, peak_name: str) -> list[tuple[str, str]]:
    lora, qlora = results["LoRA"], results["QLoRA"]
    mib = 2**20
    rows = []
    for name, run in results.items():
        rows.append(
            (
                f"{name} tokens/s",
                f"{run['tokens_per_s']:.0f}  ({peak_name} {run['peak_bytes'] / mib:.0f} MiB, frozen base weights "
                f"{run['weights_bytes'] / mib:.1f} MiB)",
            )
        )
    return [
        *rows,
        ("QLoRA / LoRA tokens/s", f"{qlora['tokens_per_s'] / lora['tokens_per_s']:.2f}x"),
        (f"QLoRA / LoRA {peak_name}", f"{qlora['peak_bytes'] / lora['peak_bytes']:.2f}x"),
        ("QLoRA / LoRA frozen base weights", f"{qlora['weights_bytes'] / lora['weights_bytes']:.2f}x"),
    ]


@dataclass
class SftRun:
    """The demo's SFT on a base, and the held-out validity before (the base, greedy) and after (with retries)."""

    hyper: dict[str, Any]
    steps: int
    train_seconds: float
    tokens_per_s: float
    final_loss: float
    before: Validity
    after: Validity


@contextmanager
def demo_services(base_id: str, base_folder: Path | None = None) -> Iterator[tuple[Any, str, Any]]:
    """(services, owner, the base's catalog entry) on a temporary home with the tiny and mini models installed;
    with `base_folder`, the base is that folder (a model being trained), registered as `<base_id>-candidate`."""
    from bench.common import make_home
    from genfoundry.config import JobSettings, Settings
    from genfoundry.repo import users as users_repo
    from genfoundry.services import build_services

    home = make_home()
    settings = Settings(home=home, jobs=JobSettings(executor="thread"))
    if base_folder is not None:
        base_id = f"{base_id}-candidate"
        catalog = home / "candidate.toml"
        catalog.write_text(
            f'[text_models."{base_id}"]\nsource = {json.dumps(str(base_folder.resolve()))}\n'
            'prompt_format = "chat_template"\ndtype = "float32"\n',
            encoding="utf-8",
        )
        settings = Settings(home=home, jobs=JobSettings(executor="thread"), catalog_file=catalog)
    services = build_services(settings)
    try:
        with services.sessions() as session:
            owner = users_repo.get_or_create_local_user(session=session).id
            session.commit()
        yield services, owner, services.catalog.get_text(base_id)
    finally:
        services.close()
        shutil.rmtree(home, ignore_errors=True)


def demo_sft_validity(
    services: Any, owner: str, base: Any, *, tries: int, scenarios: int = 40, steps: int | None = None
) -> SftRun:
    """Validity of the base (greedy), the demo's SFT on the training pairs, validity of the adapter (`tries`)."""
    from genfoundry.cli_demo import DEMO_HYPERPARAMETERS
    from genfoundry.services.text_adapters import register_text_adapter
    from genfoundry.text.formats import TextFormat
    from genfoundry.training.callbacks import TrainingCallbacks
    from genfoundry.training.sft import train_sft
    from genfoundry.training.sft_config import SftTrainingConfig

    pairs = heldout()[:scenarios]
    before = validity(services, owner, base.id, pairs, tries=1)
    hyper = dict(DEMO_HYPERPARAMETERS)
    if steps:
        hyper.pop("n_epochs")
        hyper["max_steps"] = steps
    config = SftTrainingConfig.from_params(base.source, hyper, base_id=base.id, prompt_format=base.prompt_format)
    last: dict[str, float] = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = train_sft(
            config, packaged(*TRAIN_FILE), Path(work), TrainingCallbacks(on_step=lambda s, t, m: last.update(m))
        )
        train_s = time.perf_counter() - began
        assert result.adapter_path is not None
        adapter = register_text_adapter(
            sessions=services.sessions,
            store=services.store,
            owner_id=owner,
            base_id=base.id,
            name="bench-sft",
            peft_dir=result.adapter_path,
            text_format=TextFormat.read(result.adapter_path),
            tags={},
        )
    after = validity(services, owner, adapter.id, pairs, tries=tries)
    return SftRun(hyper, result.step, train_s, last["tokens_per_s"], last["loss"], before, after)


def cpu_bench(args: argparse.Namespace) -> None:
    with demo_services(args.base) as (services, owner, base):
        run = demo_sft_validity(services, owner, base, tries=args.tries, scenarios=args.scenarios, steps=args.steps)
        before, after = run.before, run.after
        rows = [
            (
                "fine-tuning",
                f"{run.steps} steps ({json.dumps(run.hyper)}) in {run.train_seconds:.0f}s, "
                f"{run.tokens_per_s:.0f} tokens/s; final loss {run.final_loss:.3f}",
            ),
            ("valid before (greedy)", share(before.first_try, before.total)),
            ("valid after (greedy)", share(after.first_try, after.total)),
            (
                f"valid after, {args.tries} tries",
                f"{share(after.within_tries, after.total)}, "
                f"{after.attempts / after.total:.2f} generations per scenario",
            ),
            (
                "greedy: valid and the reference's type",
                f"before {share(before.same_type, before.total)}, after {share(after.same_type, after.total)}",
            ),
            (
                "greedy: similarity to the reference",
                f"before {before.similarity / before.total:.2f}, "
                f"after {after.similarity / after.total:.2f} (difflib ratio)",
            ),
            ("greedy output == reference", share(after.exact, after.total)),
            ("generation + check time", f"{after.seconds / after.attempts:.2f}s per generation after"),
        ]
        if not args.skip_throughput:
            with tempfile.TemporaryDirectory() as work:
                extra = {key: run.hyper[key] for key in ("batch_size", "max_seq_length", "packing", "rank")}
                results = throughput(
                    Path(base.source), packaged(*TRAIN_FILE), Path(work), steps=args.throughput_steps, extra=extra
                )
                rows += throughput_rows(results, peak_name="peak RSS")
        report(f"SFT of {base.id} on scenario -> PlantUML ({after.total} held-out scenarios)", rows)


def build_sized(folder: Path) -> Path:
    """A random Llama with Llama-3.2-1B's shapes in bf16, with tiny-llm's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from genfoundry.models.tiny_llm import make_tiny_llm_tokenizer

    tokenizer = make_tiny_llm_tokenizer()
    config = LlamaConfig(
        **SIZED,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model: Any = LlamaForCausalLM(config)
    model = model.to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sized_bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as work:
        base = build_sized(Path(work) / "base")
        extra = {
            "batch_size": args.batch_size,
            "max_seq_length": args.seq_len,
            "packing": True,
            "rank": 16,
            "dtype": "bfloat16",
            "gradient_checkpointing": args.gradient_checkpointing,
        }
        results = throughput(base, packaged(*TRAIN_FILE), Path(work), steps=args.throughput_steps, extra=extra)
    report(
        f"SFT of a ~1.2B random Llama: LoRA (bf16 base) vs QLoRA (NF4), rank 16, {args.batch_size} x "
        f"{args.seq_len} packed tokens per step, {args.throughput_steps} steps",
        throughput_rows(results, peak_name="peak GPU memory"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sized", action="store_true", help="~1.2B-parameter random Llama, for a GPU")
    parser.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: the demo's)")
    parser.add_argument("--base", default="mini-llm", help="the text base the demo's SFT starts from")
    parser.add_argument("--tries", type=int, default=3, help="generations per scenario in the retry loop")
    parser.add_argument("--scenarios", type=int, default=40, help="held-out scenarios to ask for")
    parser.add_argument("--throughput-steps", type=int, default=20)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--batch-size", type=int, default=4, help="--sized: packed rows per step")
    parser.add_argument("--seq-len", type=int, default=1024, help="--sized: tokens per packed row")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="--sized")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
    elif args.sized:
        sized_bench(args)
    else:
        cpu_bench(args)


if __name__ == "__main__":
    main()
