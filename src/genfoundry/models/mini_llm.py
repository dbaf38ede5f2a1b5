"""mini-llm: a small Llama-shaped causal LM pretrained on PlantUML text the project owns, so SFT on the scenario ->
PlantUML pairs starts from a model that already writes PlantUML and copies a request's names into it.

This module holds its architecture (untrained) and the install step; `scripts/train_mini_models.py llm` trains
the tokenizer and the weights, which ship in the package (`genfoundry/data/mini/llm`) and are copied into the home
by `genfoundry models build-tiny`. The tokenizer is tiny-llm's kind (byte-level BPE learned from project text,
ChatML tokens and chat template), learned from the pretraining text.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

MINI_LLM_ID = "mini-llm"
MINI_LLM_SUBDIR = "mini-llm"
CONTEXT_LENGTH = 1024
VOCAB_SIZE = 2048
# About 2.4M parameters: a single torch thread pretrains it on ~5M tokens in about half an hour on a shared 2-core
# CPU (a width of 256 halved the tokens that fit in that time), and a LoRA epoch over the 320 pairs takes seconds.
ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 192,
    "intermediate_size": 512,  # a multiple of 64: bitsandbytes packs 4-bit CPU weights in blocks of 64
    "num_hidden_layers": 4,
    "num_attention_heads": 6,
    "num_key_value_heads": 3,
}


def make_tokenizer(texts: list[str]) -> Any:
    """tiny-llm's tokenizer recipe (byte-level BPE, ChatML tokens and template) learned from `texts`."""
    from genfoundry.models.tiny_llm import make_tiny_llm_tokenizer

    tokenizer = make_tiny_llm_tokenizer(texts, vocab_size=VOCAB_SIZE)
    tokenizer.model_max_length = CONTEXT_LENGTH
    return tokenizer


def build_untrained(tokenizer: Any, *, seed: int = 0) -> Any:
    """A LlamaForCausalLM of ARCHITECTURE for `tokenizer`, weights drawn from `seed`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from genfoundry.models.tiny_llm import IM_END, PAD_TOKEN

    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = LlamaConfig(
        vocab_size=-(-len(tokenizer) // 64) * 64,
        max_position_embeddings=CONTEXT_LENGTH,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        **ARCHITECTURE,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    return model


def packaged_dir() -> Path | None:
    """The pretrained weights shipped in the package, or None in a checkout where they were never trained."""
    folder = Path(str(resources.files("genfoundry").joinpath("data", "mini", "llm")))
    return folder if (folder / "model.safetensors").exists() else None


def install(tiny_dir: Path, *, force: bool = False) -> tuple[Path | None, bool]:
    """Copy the packaged mini-llm into the tiny-models folder (again when the package's weights changed); (its
    folder, whether it was copied now), or (None, False) when the package holds no weights."""
    from genfoundry.models.mini_install import install_packaged

    return install_packaged(packaged_dir(), tiny_dir, MINI_LLM_SUBDIR, force=force)
