"""Random-weight image captioners built fully offline: a tiny Florence-2 (default) or BLIP, and a Florence-2-base-sized
one for GPU benchmarks. Saved with `save_pretrained`, so they load through the real captioner loading code."""

from __future__ import annotations

import functools
import itertools
import re
import shutil
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genfoundry.models.tiny import corpus_lines, merge_symbols

TINY_CAPTIONER_ID = "tiny-captioner"
TINY_CAPTIONER_SUBDIR = "captioner"  # under the tiny-models dir, next to the tiny pipelines
CAPTIONER_KINDS = ("florence2", "blip")

_BPE_MERGES = 400
# The image mean/std Florence-2's CLIPImageProcessor config uses (ImageNet's).
_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]
# Random weights at the usual 0.02 init make the image signal vanish and every image gets the same caption;
# a wide init lets the image drive the (gibberish) output, as it does in a trained captioner.
_TINY_INIT_STD = 0.5
# Florence2Processor refuses to post-process without a parse rule per output type (the Hub configs ship these).
_FLORENCE_POST_PROCESSOR_CONFIG: dict[str, Any] = {
    "ocr": {
        "pattern": r"(.+?)<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>",
        "area_threshold": 0.0,
    },
    "phrase_grounding": {"banned_grounding_tokens": ["the image"]},
    "pure_text": {},
    "description_with_bboxes": {},
    "description_with_polygons": {},
    "polygons": {},
    "bboxes": {},
    "description_with_bboxes_or_polygons": {},
}


@dataclass(frozen=True)
class FlorenceSizes:
    """The knobs that differ between the tiny Florence-2, mini-captioner and a Florence-2-base-sized one."""

    image_size: int
    depths: tuple[int, ...]
    embed_dim: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    d_model: int
    layers: int
    heads: int
    ffn_dim: int
    max_positions: int
    vision_positions: int  # side of the learned 2-D position table; at least the feature grid's side
    temporal_positions: int
    init_std: float


_TINY_FLORENCE = FlorenceSizes(
    image_size=32,
    depths=(1, 1),
    embed_dim=(16, 32),
    num_heads=(2, 4),
    window_size=4,
    d_model=32,
    layers=1,
    heads=2,
    ffn_dim=37,
    max_positions=256,
    vision_positions=8,
    temporal_positions=4,
    init_std=_TINY_INIT_STD,
)
# florence-community/Florence-2-base: DaViT (1, 1, 9, 1) at 768 px, BART-base text model, 51289 tokens.
_BASE_FLORENCE = FlorenceSizes(
    image_size=768,
    depths=(1, 1, 9, 1),
    embed_dim=(128, 256, 512, 1024),
    num_heads=(4, 8, 16, 32),
    window_size=12,
    d_model=768,
    layers=6,
    heads=12,
    ffn_dim=3072,
    max_positions=1024,
    vision_positions=50,
    temporal_positions=100,
    init_std=0.02,
)
_FLORENCE_BASE_VOCAB = 51289


@functools.lru_cache(maxsize=2)
def _bart_vocab_merges(lines: tuple[str, ...], merge_count: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn a small byte-level BPE with BART/GPT-2 conventions ("Ġ" marks a space); pure Python, deterministic."""
    from tokenizers import pre_tokenizers

    pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words: Counter[str] = Counter()
    for line in lines:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(line))
    corpus = {tuple(word): n for word, n in words.items()}
    merges: list[tuple[str, str]] = []
    while len(merges) < merge_count:
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, n in corpus.items():
            for pair in itertools.pairwise(symbols):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # ties by the pair itself, never by hash order
        merges.append(best)
        corpus = {merge_symbols(symbols, best): n for symbols, n in corpus.items()}
    # BART's layout: <s>, <pad>, </s>, <unk> first (ids 0-3), then bytes and merges, <mask>, then Florence's <image>.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for piece in ["<s>", "<pad>", "</s>", "<unk>", *alphabet, *(a + b for a, b in merges), "<mask>", "<image>"]:
        vocab.setdefault(piece, len(vocab))
    return vocab, merges


def make_florence2_tokenizer(
    *, vocab_size: int | None = None, corpus: tuple[str, ...] | None = None, merge_count: int = _BPE_MERGES
) -> Any:
    """A working BART tokenizer (byte-level BPE learned from `corpus`, default the tiny models' lines) with
    Florence-2's image token; padded to `vocab_size` if given."""
    from transformers import BartTokenizer

    vocab, merges = _bart_vocab_merges(corpus if corpus is not None else tuple(corpus_lines()), merge_count)
    vocab = dict(vocab)
    # Sized models need the real vocabulary size (it sets the LM head's cost); the padding pieces are never
    # produced by the merges, so tokenization is unchanged.
    for i in itertools.count():
        if vocab_size is None or len(vocab) >= vocab_size:
            break
        vocab[f"<unused_{i}>"] = len(vocab)
    pairs: Any = list(merges)  # the backend accepts (a, b) tuples; stubs only admit str
    return BartTokenizer(
        vocab=vocab, merges=pairs, extra_special_tokens={"image_token": "<image>"}, model_max_length=1024
    )


def _clip_image_processor(size: int, **kwargs: Any) -> Any:
    """The Pillow CLIP image processor when available (no torchvision on CPU here), else the default one."""
    import transformers

    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return cls(
        do_resize=True,
        size={"height": size, "width": size},
        do_center_crop=False,
        crop_size={"height": size, "width": size},
        resample=3,  # bicubic, as in Florence-2's config
        image_mean=_IMAGENET_MEAN,
        image_std=_IMAGENET_STD,
        **kwargs,
    )


def build_florence2(sizes: FlorenceSizes, seed: int, *, tokenizer: Any = None) -> tuple[Any, Any]:
    """Build a random-weight Florence2ForConditionalGeneration and its Florence2Processor (default tokenizer: the
    tiny models' BPE)."""
    import torch
    from transformers import Florence2Config, Florence2ForConditionalGeneration, Florence2Processor, GenerationConfig

    tokenizer = tokenizer if tokenizer is not None else make_florence2_tokenizer()
    stages = len(sizes.depths)
    grid = sizes.image_size // (4 * 2 ** (stages - 1))  # the first conv strides 4, each later stage 2
    image_processor = _clip_image_processor(sizes.image_size)
    image_processor.image_seq_length = grid * grid + 1  # one token per cell plus the pooled temporal token
    processor = Florence2Processor(
        image_processor=image_processor, tokenizer=tokenizer, post_processor_config=_FLORENCE_POST_PROCESSOR_CONFIG
    )
    ids: dict[str, Any] = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2}
    config = Florence2Config(
        vision_config={
            "depths": list(sizes.depths),
            "patch_size": [7, *[3] * (stages - 1)],
            "patch_stride": [4, *[2] * (stages - 1)],
            "patch_padding": [3, *[1] * (stages - 1)],
            "patch_prenorm": [False, *[True] * (stages - 1)],
            "embed_dim": list(sizes.embed_dim),
            "num_heads": list(sizes.num_heads),
            "num_groups": list(sizes.num_heads),
            "window_size": sizes.window_size,
            "drop_path_rate": 0.0,
            "projection_dim": sizes.d_model,
            "max_position_embeddings": sizes.vision_positions,
            "max_temporal_embeddings": sizes.temporal_positions,
            "initializer_range": sizes.init_std,
        },
        text_config={
            "model_type": "bart",
            "vocab_size": len(tokenizer),
            "d_model": sizes.d_model,
            "encoder_layers": sizes.layers,
            "decoder_layers": sizes.layers,
            "encoder_attention_heads": sizes.heads,
            "decoder_attention_heads": sizes.heads,
            "encoder_ffn_dim": sizes.ffn_dim,
            "decoder_ffn_dim": sizes.ffn_dim,
            "max_position_embeddings": sizes.max_positions,
            "dropout": 0.0,
            "init_std": sizes.init_std,
            "forced_eos_token_id": 2,
            **ids,
        },
        image_token_id=tokenizer.image_token_id,
        **ids,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Florence2ForConditionalGeneration(config).eval()
    specials = [tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "<unk>", "<mask>", "<image>")]
    # Florence-2's own generation defaults, plus: never emit special tokens and write at least two real tokens,
    # so a random-weight caption always decodes to visible text.
    model.generation_config = GenerationConfig(
        **ids, num_beams=3, no_repeat_ngram_size=3, min_new_tokens=2, suppress_tokens=specials
    )
    return model, processor


@functools.lru_cache(maxsize=1)
def _bert_vocab() -> dict[str, int]:
    """A WordPiece vocab with BERT conventions ([PAD]=0 ... [MASK]) plus BLIP's [DEC] start token."""
    words = Counter(w for line in corpus_lines() for w in re.findall(r"\w+|[^\w\s]", line.lower()))
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab: dict[str, int] = {}
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    for piece in [*specials, *chars, *("##" + c for c in chars), *sorted(words)]:
        vocab.setdefault(piece, len(vocab))
    return vocab


def _blip(seed: int) -> tuple[Any, Any]:
    """Build a tiny random-weight BlipForConditionalGeneration and its BlipProcessor."""
    import torch
    import transformers
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor

    tokenizer = BertTokenizer(vocab=dict(_bert_vocab()), bos_token="[DEC]", model_max_length=256)  # noqa: S106
    image_cls = getattr(transformers, "BlipImageProcessorPil", None) or transformers.BlipImageProcessor
    processor = BlipProcessor(image_processor=image_cls(size={"height": 32, "width": 32}), tokenizer=tokenizer)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    sizes = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = BlipConfig(
        vision_config={**sizes, "image_size": 32, "patch_size": 8, "initializer_range": _TINY_INIT_STD},
        text_config={
            **sizes,
            **ids,
            "vocab_size": len(tokenizer),
            "encoder_hidden_size": 32,
            "max_position_embeddings": 256,
            "initializer_range": _TINY_INIT_STD,
        },
        projection_dim=32,
        initializer_range=_TINY_INIT_STD,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BlipForConditionalGeneration(config).eval()
        # BLIP's text decoder ignores the saved generation config, so keep special tokens out through the
        # LM head's bias instead: captions decode to visible text.
        bias = model.text_decoder.cls.predictions.bias
        specials = [tokenizer.convert_tokens_to_ids(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]")]
        bias.data[specials] = -30.0
    return model, processor


def build_tiny_captioner(out_dir: Path, *, seed: int = 0, kind: str = "florence2") -> Path:
    """Build a deterministic tiny random-weight captioner of `kind` ("florence2" or "blip") into `out_dir`."""
    if kind not in CAPTIONER_KINDS:
        raise ValueError(f"captioner kind must be one of {CAPTIONER_KINDS}, got {kind!r}")
    model, processor = build_florence2(_TINY_FLORENCE, seed) if kind == "florence2" else _blip(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def build_florence2_sized_captioner(out_dir: Path, *, seed: int = 0, dtype: str = "float16") -> Path:
    """A Florence-2-base-sized captioner (real layer sizes and vocabulary size, random weights), saved in `dtype`."""
    import torch

    tokenizer = make_florence2_tokenizer(vocab_size=_FLORENCE_BASE_VOCAB)
    model, processor = build_florence2(_BASE_FLORENCE, seed, tokenizer=tokenizer)
    model.to(dtype=getattr(torch, dtype))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def tiny_captioner_dir(tiny_dir: Path) -> Path:
    """Where `models build-tiny` puts the tiny captioner inside the tiny-models dir."""
    return tiny_dir / TINY_CAPTIONER_SUBDIR


def ensure_tiny_captioner(tiny_dir: Path, *, force: bool = False, seed: int = 0) -> tuple[Path, bool]:
    """Build the tiny captioner under `tiny_dir` unless present; returns (folder, whether it was built now)."""
    target = tiny_captioner_dir(tiny_dir)
    if (target / "config.json").exists() and not force:
        return target, False
    # Build aside and rename, so a crash never leaves a half-written captioner that looks complete.
    staging = tiny_dir / f".building-{TINY_CAPTIONER_SUBDIR}"
    shutil.rmtree(staging, ignore_errors=True)
    build_tiny_captioner(staging, seed=seed)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    return target, True
