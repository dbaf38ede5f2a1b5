"""tiny-llm: a random-weight Llama-style causal LM with a byte-level BPE tokenizer trained locally, built offline.

The tokenizer learns from text the project ships (the tiny image corpus, the router's data, the PlantUML
pairs when present), carries ChatML special tokens and a chat template (`<|im_start|>role\\n...<|im_end|>`), and
ends a reply with `<|im_end|>`. Both are saved with `save_pretrained`, so they load through `from_pretrained`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

TINY_LLM_ID = "tiny-llm"
TINY_LLM_SUBDIR = "tiny-llm"  # under the tiny-models dir
PAD_TOKEN = "<|endoftext|>"  # noqa: S105 - a token, not a password
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, IM_END)
# ChatML as Qwen2.5-Instruct writes it, tools included: with `tools`, a system turn lists them (after the caller's
# system message) and asks for `<tool_call>` JSON; an assistant's calls and the tool results render as Qwen2.5's do.
# Without tools a conversation renders as plain ChatML, one `<|im_start|>role ... <|im_end|>` turn per message.
CHATML_TEMPLATE = (
    "{% set ns = namespace(skip_first=false) %}"
    "{% if tools %}"
    "{{ '<|im_start|>system\\n' }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{{ messages[0]['content'] + '\\n\\n' }}{% set ns.skip_first = true %}"
    "{% endif %}"
    "{{ '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{% for tool in tools %}{{ '\\n' + (tool | tojson) }}{% endfor %}"
    "{{ '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": '
    "<args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if loop.first and ns.skip_first %}"
    "{% elif message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{{ '<|im_start|>assistant' }}{% if message['content'] %}{{ '\\n' + message['content'] }}{% endif %}"
    "{% for call in message['tool_calls'] %}{% set call = call['function'] if call['function'] is defined else call %}"
    "{{ '\\n<tool_call>\\n{\\\"name\\\": \\\"' + call['name'] + '\\\", \\\"arguments\\\": ' }}"
    "{{ call['arguments'] | tojson }}{{ '}\\n</tool_call>' }}"
    "{% endfor %}{{ '<|im_end|>\\n' }}"
    "{% elif message['role'] == 'tool' %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}{{ '<|im_start|>user' }}{% endif %}"
    "{{ '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
    "{% if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}{{ '<|im_end|>\\n' }}{% endif %}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_VOCAB_SIZE = 2048
_CONTEXT_LENGTH = 2048
# Packaged text the tokenizer learns from, in a fixed order; a missing file is skipped.
_CORPUS_FILES = (
    ("router", "train.jsonl"),
    ("router", "heldout.jsonl"),
    ("diagrams", "plantuml_pairs.jsonl"),
)


def _packaged(*parts: str) -> Traversable | None:
    node: Traversable = resources.files("genfoundry.data")
    for part in parts:
        node = node.joinpath(part)
    return node if node.is_file() else None


def _record_texts(record: Any) -> Iterator[str]:
    """Every string of a JSONL record (prompt, completion, text, message contents), in key order."""
    if isinstance(record, str):
        yield record
    elif isinstance(record, dict):
        for key in sorted(record):
            if key not in ("label", "role", "weight", "metadata"):
                yield from _record_texts(record[key])
    elif isinstance(record, list):
        for item in record:
            yield from _record_texts(item)


def corpus_texts() -> list[str]:
    """The tokenizer's training text: the tiny image corpus plus the packaged JSONL files, deterministic."""
    from genfoundry.models.tiny import corpus_lines

    texts = list(corpus_lines())
    for parts in _CORPUS_FILES:
        node = _packaged(*parts)
        if node is None:
            continue
        for line in node.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.extend(text for text in _record_texts(json.loads(line)) if text.strip())
    return texts


def make_tiny_llm_tokenizer(texts: list[str] | None = None, *, vocab_size: int = _VOCAB_SIZE) -> Any:
    """A byte-level BPE tokenizer trained on `texts` (default: `corpus_texts()`) with ChatML tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes: no unknown token
        show_progress=False,
    )
    backend.train_from_iterator(texts if texts is not None else corpus_texts(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        chat_template=CHATML_TEMPLATE,
        model_max_length=_CONTEXT_LENGTH,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_llm(out_dir: Path, *, seed: int = 0) -> Path:
    """Build tiny-llm (tokenizer trained now, weights drawn from `seed`) and save it loadable by from_pretrained."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = make_tiny_llm_tokenizer()
    vocab = -(-len(tokenizer) // 64) * 64  # a multiple of 64, like real models' padded embeddings
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = LlamaConfig(
        vocab_size=vocab,
        max_position_embeddings=_CONTEXT_LENGTH,
        # About 1.3M parameters: an epoch of LoRA over the PlantUML pairs takes seconds on a CPU.
        hidden_size=128,
        intermediate_size=384,  # a multiple of 64: bitsandbytes packs 4-bit CPU weights in blocks of 64
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        # A trained LM's output head can make one token far likelier than the rest; at the usual 0.02 init the
        # largest reachable logit is ~2.5, so no LoRA could push the loss much below log(vocab) / 1.5. Rows of
        # norm ~1 let the final hidden state (norm ~sqrt(hidden)) reach logits of ~11.
        torch.nn.init.normal_(model.lm_head.weight, std=config.hidden_size**-0.5)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def ensure_tiny_llm(tiny_dir: Path, *, force: bool = False, seed: int = 0) -> tuple[Path, bool]:
    """(folder, whether it was built now): `<tiny_dir>/tiny-llm`, built through a staging folder when missing."""
    target = Path(tiny_dir) / TINY_LLM_SUBDIR
    if (target / "config.json").exists() and (target / "tokenizer.json").exists() and not force:
        return target, False
    staging = Path(tiny_dir) / f".building-{TINY_LLM_SUBDIR}"
    shutil.rmtree(staging, ignore_errors=True)
    build_tiny_llm(staging, seed=seed)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    return target, True
