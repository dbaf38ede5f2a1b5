"""SetFit-style contrastive fine-tuning of the encoder, as a LoRA: pairs of examples with the same label are
pulled together (cosine → 1), pairs with different labels pushed apart (cosine → 0); a head is fit afterwards
on the tuned embeddings. Seeded pair sampling, LoRA init and batch order, so the same data gives the same LoRA.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genfoundry.inference.heavy_imports import import_ml_libraries
from genfoundry.inference.loader import MODULE_BUILD_LOCK
from genfoundry.router.encoder import LoraSpec, encoder_dir, torch_threads


@dataclass(frozen=True)
class ContrastiveConfig:
    pairs: int = 3200  # half positive, half negative
    batch_size: int = 16  # pairs per step
    learning_rate: float = 2e-4
    rank: int = 16
    alpha: int = 32
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")
    max_tokens: int = 64  # training window; prompts are short, and the serving window stays the encoder's own
    seed: int = 0
    threads: int | None = 1  # torch threads for the training loop (one: no stalls on a shared CPU, same sums anywhere)

    @property
    def steps(self) -> int:
        return -(-self.pairs // self.batch_size)


@dataclass
class ContrastiveResult:
    spec: LoraSpec | None  # None when stopped early
    losses: list[float] = field(default_factory=list)


def make_pairs(labels: Sequence[str], count: int, seed: int) -> list[tuple[int, int, float]]:
    """`count` (i, j, target) pairs alternating same-label (1.0) and different-label (0.0), seeded."""
    rng = np.random.default_rng(seed)
    by_label = {label: np.array([i for i, x in enumerate(labels) if x == label]) for label in sorted(set(labels))}
    names = sorted(by_label)
    pairs = []
    for k in range(count):
        first = int(rng.integers(len(labels)))
        own = labels[first]
        if k % 2 == 0:
            second, target = int(rng.choice(by_label[own])), 1.0
        else:
            others = [name for name in names if name != own]
            second, target = int(rng.choice(by_label[others[int(rng.integers(len(others)))]])), 0.0
        pairs.append((first, second, target))
    return pairs


def contrastive_lora(
    texts: Sequence[str],
    labels: Sequence[str],
    output_file: Path,
    config: ContrastiveConfig,
    *,
    model_dir: Path | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ContrastiveResult:
    """Train a LoRA on the encoder with SetFit's cosine-similarity loss; save its weights to `output_file`."""
    import_ml_libraries()  # classifier jobs on the thread executor run beside the server's engines
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = model_dir or encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(config.seed)  # the LoRA A matrices are initialised at random
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        target_modules=list(config.target_modules),
        lora_dropout=0.0,
        bias="none",
    )
    with MODULE_BUILD_LOCK:
        model: Any = get_peft_model(AutoModel.from_pretrained(folder), lora)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    pairs = make_pairs(labels, config.pairs, config.seed)

    def embed(batch: list[str]) -> Any:
        tokens = tokenizer(batch, padding=True, truncation=True, max_length=config.max_tokens, return_tensors="pt")
        hidden = model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    result = ContrastiveResult(spec=None)
    with torch_threads(config.threads):
        for step, start in enumerate(range(0, len(pairs), config.batch_size), start=1):
            if should_stop is not None and should_stop():
                return result
            chunk = pairs[start : start + config.batch_size]
            first = embed([texts[i] for i, _, _ in chunk])
            second = embed([texts[j] for _, j, _ in chunk])
            target = torch.tensor([t for _, _, t in chunk], dtype=first.dtype)
            loss = torch.nn.functional.mse_loss((first * second).sum(dim=1), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            result.losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, config.steps, result.losses[-1])
    state = {key: value.detach().contiguous() for key, value in get_peft_model_state_dict(model).items()}
    output_file.parent.mkdir(parents=True, exist_ok=True)
    save_file(dict(sorted(state.items())), str(output_file))
    result.spec = LoraSpec(path=output_file, rank=config.rank, alpha=config.alpha, target_modules=config.target_modules)
    return result
