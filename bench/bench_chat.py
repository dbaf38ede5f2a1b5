"""Chat completions tokens/s with 1 vs 4 adapters in use, through the real server, against a baseline.

Each round sends `--concurrency` chat requests at once, all on one LoRA adapter or spread over four (request
i on adapter i mod 4), interleaved round by round in the same run; the base model alone is a third pattern
for scale. Tokens/s counts the completion tokens the server reports in `usage`. The engine decodes the
requests that queue together in one batch whatever their adapters (text_runner.py).

Goals (issue 18): 4 adapters reach >= 0.8x the tokens/s of 1 adapter, and 1 adapter reaches >= 1.5x the
tokens/s of the code before issue 18's decoding work (`--baseline`, a git commit: a second server runs from a
temporary worktree of it, side by side with this code, its rounds interleaved with this code's).

`--sized` builds a ~1B-parameter random-weight Llama (TinyLlama-1.1B's shape: 22 layers, hidden 2048,
GQA 32/4 heads) saved in bf16, with rank-16 adapters, meant for a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import Goal, goal, goals_exit_code, p50, report, running_server

# The last commit before issue 18's decoding work (per-row sampling, every batch run to its longest budget).
BEFORE_ISSUE_18_DECODING = "1a2aa16a51bbd2f3d552dff3dd46bf5a0e5d9230"
REPO = Path(__file__).resolve().parent.parent

# TinyLlama-1.1B's published shape, with tiny-llm's 2048-token vocabulary (its tokenizer is reused).
_SIZED_LLAMA: dict[str, Any] = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
}


def build_sized_llm(out_dir: Path, *, seed: int = 0, dtype: str = "bfloat16") -> Path:
    """A ~1B-parameter random-weight Llama with tiny-llm's tokenizer and chat template, saved in `dtype`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from genfoundry.models.tiny_llm import IM_END, PAD_TOKEN, make_tiny_llm_tokenizer

    tokenizer = make_tiny_llm_tokenizer()
    eos_id, pad_id = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = LlamaConfig(
        vocab_size=-(-len(tokenizer) // 64) * 64, eos_token_id=eos_id, pad_token_id=pad_id, **_SIZED_LLAMA
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def prepare(args: argparse.Namespace) -> tuple[Path, str, Path, dict[str, str]]:
    """A temp home with the model in a catalog file: (home, model id, model folder, server env)."""
    home = Path(tempfile.mkdtemp(prefix="genfoundry-bench-chat-"))
    if args.sized:
        model_id, folder = "random-llama-1b", build_sized_llm(home / "models" / "sized" / "llama-1b")
        dtype = "bfloat16"
    else:
        from genfoundry.models.tiny_llm import ensure_tiny_llm

        model_id, (folder, _) = "tiny-llm", ensure_tiny_llm(home / "models" / "tiny")
        dtype = "float32"
    catalog = home / "bench-catalog.toml"
    catalog.write_text(
        f'[text_models."{model_id}"]\nsource = "{folder}"\nprompt_format = "chat_template"\ndtype = "{dtype}"\n',
        encoding="utf-8",
    )
    env = {"GENFOUNDRY_CATALOG_FILE": str(catalog), "GENFOUNDRY_BATCH_TIMEOUT_MS": str(args.batch_timeout_ms)}
    return home, model_id, folder, env


def register_adapters(home: Path, model_id: str, folder: Path, *, rank: int) -> list[str]:
    """Four random LoRA adapters on the model, registered for the single-user mode's local user."""
    from genfoundry.config import Settings
    from genfoundry.db.session import make_engine, make_session_factory, upgrade_database
    from genfoundry.models.random_lora import make_text_lora_dir
    from genfoundry.repo import users as users_repo
    from genfoundry.services.text_adapters import register_text_adapter
    from genfoundry.storage import ArtifactStore
    from genfoundry.text.formats import TextFormat

    settings = Settings(home=home)
    engine = make_engine(settings.resolved_database_url)
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    store = ArtifactStore(settings.resolved_storage_url, cache_dir=home / "cache" / "artifacts")
    with sessions() as session:
        owner = users_repo.get_or_create_local_user(session=session).id
        session.commit()
    ids = []
    for i in range(4):
        peft_dir = make_text_lora_dir(folder, home / "bench-loras" / str(i), seed=i, rank=rank)
        adapter = register_text_adapter(
            sessions=sessions,
            store=store,
            owner_id=owner,
            base_id=model_id,
            name=f"bench {i}",
            peft_dir=peft_dir,
            text_format=TextFormat(base_id=model_id, prompt_format="chat_template"),
            tags={},
        )
        ids.append(adapter.id)
    engine.dispose()
    return ids


@contextmanager
def source_tree(commit: str) -> Iterator[Path]:
    """A temporary git worktree of `commit` (detached), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="genfoundry-bench-baseline-")) / "tree"
    git = ["git", "-C", str(REPO)]
    subprocess.run([*git, "worktree", "add", "--detach", str(folder), commit], check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sized", action="store_true", help="a ~1B-parameter random Llama in bf16 (for a GPU)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=None, help="default 32 (tiny) or 128 (--sized)")
    parser.add_argument("--rank", type=int, default=None, help="default 4 (tiny) or 16 (--sized)")
    parser.add_argument("--batch-timeout-ms", type=float, default=20.0)
    parser.add_argument(
        "--baseline",
        default=BEFORE_ISSUE_18_DECODING,
        help="git commit whose code serves the baseline (default: the one before issue 18's decoding work)",
    )
    args = parser.parse_args()
    max_tokens = args.max_tokens or (128 if args.sized else 32)
    rank = args.rank or (16 if args.sized else 4)

    servers = {"this code": "", "baseline": args.baseline}
    patterns = ("base model", "1 adapter", "4 adapters")
    rates: dict[tuple[str, str], list[float]] = {(server, name): [] for server in servers for name in patterns}
    one_token: dict[str, list[float]] = {server: [] for server in servers}
    with ExitStack() as stack:
        clients: dict[str, tuple[httpx.Client, dict[str, list[str]]]] = {}
        for server, commit in servers.items():
            home, model_id, folder, env = prepare(args)
            adapters = register_adapters(home, model_id, folder, rank=rank)
            if commit:
                env["PYTHONPATH"] = str(stack.enter_context(source_tree(commit)) / "src")
            url = stack.enter_context(running_server(home, **env))
            client = stack.enter_context(
                httpx.Client(base_url=url, timeout=900, limits=httpx.Limits(max_connections=64))
            )
            clients[server] = (
                client,
                {
                    "base model": [model_id] * args.concurrency,
                    "1 adapter": [adapters[0]] * args.concurrency,
                    "4 adapters": [adapters[i % 4] for i in range(args.concurrency)],
                },
            )
        pool = stack.enter_context(ThreadPoolExecutor(args.concurrency))

        def send(client: httpx.Client, i: int, model: str, budget: int) -> int:
            body = {
                "model": model,
                "messages": [{"role": "user", "content": f"A sequence diagram of checkout step {i}"}],
                "max_tokens": budget,
                "temperature": 0.8,
                "seed": i,
            }
            response = client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            return int(response.json()["usage"]["completion_tokens"])

        def one_round(server: str, name: str, budget: int = max_tokens) -> tuple[int, float]:
            """(completion tokens, seconds) of one round of `name`'s requests."""
            client, models = clients[server]
            start = time.perf_counter()
            requests = enumerate(models[name])
            tokens = sum(pool.map(lambda im: send(client, im[0], im[1], budget), requests))
            return tokens, time.perf_counter() - start

        for server in servers:  # warm: load the base and every adapter once
            for name in patterns:
                one_round(server, name)
        for _ in range(args.rounds):  # interleave servers and patterns in the same run
            for name in patterns:
                for server in servers:
                    tokens, seconds = one_round(server, name)
                    rates[server, name].append(tokens / seconds)
            for server in servers:  # what a round costs besides decoding: requests, batching, prefill
                one_token[server].append(one_round(server, "1 adapter", budget=1)[1])

    def rate(server: str, name: str) -> float:
        return p50(rates[server, name])

    rows: list[tuple[str, str] | Goal] = [
        (
            f"{server}: {name}, p50 tokens/s",
            f"{rate(server, name):.1f}  (spread {statistics.pstdev(v) / statistics.mean(v):.0%})",
        )
        for (server, name), v in rates.items()
    ]
    rows += [
        (f"{server}: 1 adapter, round of 1-token requests, p50 ms", f"{p50(one_token[server]) * 1000:.1f}")
        for server in servers
    ]
    rows += [
        (
            "baseline: ratio (4 adapters / 1 adapter)",
            f"{rate('baseline', '4 adapters') / rate('baseline', '1 adapter'):.3f}",
        ),
        (
            "this code: ratio (1 adapter / base model)",
            f"{rate('this code', '1 adapter') / rate('this code', 'base model'):.3f}",
        ),
        goal(
            "4 adapters / 1 adapter tokens/s",
            rate("this code", "4 adapters") / rate("this code", "1 adapter"),
            ">=",
            0.8,
        ),
        goal(
            "1 adapter tokens/s vs baseline", rate("this code", "1 adapter") / rate("baseline", "1 adapter"), ">=", 1.5
        ),
    ]
    report(
        f"Chat completions: {model_id}, {args.concurrency} concurrent requests x {args.rounds} rounds, "
        f"{max_tokens} new tokens, "
        f"LoRA rank {rank}, batch window {args.batch_timeout_ms:g} ms; baseline {args.baseline[:12]}",
        rows,
    )
    return goals_exit_code([row for row in rows if isinstance(row, Goal)])


if __name__ == "__main__":
    sys.exit(main())
