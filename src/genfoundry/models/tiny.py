"""Tiny random-weight diffusers pipelines (SD1.5, SDXL, Flux) built fully offline for tests and dev."""

from __future__ import annotations

import functools
import itertools
import pathlib
from collections.abc import Callable
from typing import Any

TINY_FAMILIES: dict[str, str] = {"tiny-sd15": "sd15", "tiny-sdxl": "sdxl", "tiny-flux": "flux"}

_CLIP_MAX_LEN = 77
_TEXT_HIDDEN = 32
_CLIP_MERGES = 600
# Four VAE blocks give the real-model VAE scale factor of 8 (64 px image -> 8x8 latent).
_VAE_BLOCKS = (8, 16, 32, 32)

_CORPUS = """
a photo of a cat. a photo of a dog. a red car on a blue street. a green tree in a park.
portrait of a woman, cinematic lighting, professional photography, sharp focus, high detail.
landscape with mountains and a lake at sunset, golden hour, dramatic clouds, wide angle.
product shot of a white bottle on a marble table, minimalist style, soft studio light.
a sks dog sitting on the grass. a photo of ohwx man wearing a black jacket. a sks cat sleeping.
an oil painting of a city at night, neon lights, rain, reflections, cyberpunk style.
watercolor illustration of a small house in the forest, warm colors, storybook, cute.
close up photo of a yellow flower with water drops, macro lens, bokeh background.
a bowl of fruit with apples, oranges and bananas, still life, natural light, kitchen.
an astronaut riding a horse on the moon, digital art, trending, highly detailed, 4k, 8k.
a cozy living room interior with a sofa, plants, wooden floor, large windows, daylight.
a logo of a fox, flat design, vector, simple shapes, orange and white, clean background.
an old man with a beard, black and white photo, film grain, 35mm, kodak, analog.
a futuristic robot in a factory, concept art, unreal engine, octane render, volumetric light.
a beach with palm trees and turquoise water, summer, vacation, aerial view, drone shot.
a plate of pasta with tomato sauce and basil, food photography, restaurant, delicious.
a snowy village in winter, christmas lights, evening, blue hour, peaceful, quiet.
anime girl with pink hair, school uniform, cherry blossoms, spring, studio ghibli style.
a sports car racing on a track, motion blur, speed, action shot, silver, fast.
a medieval castle on a hill, fantasy, epic, matte painting, birds, fog, morning.
a cup of coffee on a desk next to a laptop and a notebook, office, morning light.
a bird flying over the ocean, waves, seagull, freedom, sky, horizon, calm, gray.
the quick brown fox jumps over the lazy dog. one two three four five six seven eight nine ten.
ugly, blurry, low quality, bad anatomy, deformed, watermark, text, signature, cropped, worst.
"""

_SD_SCHED: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}


def corpus_lines() -> list[str]:
    """Return the inline training corpus as a list of non-empty lines."""
    return [line.strip() for line in _CORPUS.strip().splitlines() if line.strip()]


def merge_symbols(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Replace every adjacent occurrence of `pair` in `symbols` by its concatenation."""
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _clip_vocab_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    return learn_clip_bpe(tuple(corpus_lines()), _CLIP_MERGES)


def learn_clip_bpe(lines: tuple[str, ...], max_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn a small byte-level BPE with CLIP conventions; pure Python so it is fully deterministic."""
    from collections import Counter

    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    # tokenizers' BpeTrainer breaks ties in hash order, which changes ids between processes.
    reference = CLIPTokenizer().backend_tokenizer  # CLIP's exact normalizer + pre-tokenizer
    words: Counter[str] = Counter()
    for line in lines:
        normalized = reference.normalizer.normalize_str(line)
        words.update(w for w, _ in reference.pre_tokenizer.pre_tokenize_str(normalized))
    corpus = {(*w[:-1], w[-1] + "</w>"): n for w, n in words.items()}
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, n in corpus.items():
            for pair in itertools.pairwise(symbols):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        corpus = {merge_symbols(symbols, best): n for symbols, n in corpus.items()}
    # Layout mirrors openai/clip: bytes, bytes + "</w>", merged tokens, then the two specials.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    pieces = [*alphabet, *(c + "</w>" for c in alphabet), *(a + b for a, b in merges)]
    vocab: dict[str, int] = {}
    for piece in [*pieces, "<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(piece, len(vocab))
    return vocab, merges


@functools.lru_cache(maxsize=1)
def _t5_vocab() -> list[tuple[str, float]]:
    """Build a deterministic Unigram vocab with T5 conventions (<pad>=0, </s>=1, <unk>=2, '▁' prefix)."""
    import math
    import re
    import string
    from collections import Counter

    counts = Counter(w for line in corpus_lines() for w in re.findall(r"\w+|[^\w\s]", line))
    total = sum(counts.values())
    scores: dict[str, float] = {}
    for word, n in counts.items():
        scores["▁" + word] = round(math.log(n / total), 6)
        scores[word] = round(math.log(n / total) - 2.0, 6)  # word after punctuation, no space
    floor = round(math.log(1 / total) - 4.0, 6)  # single chars: fallback for unseen words
    for ch in "▁" + string.ascii_letters + string.digits + string.punctuation:
        scores.setdefault(ch, floor)
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *ordered]


def make_clip_tokenizer(vocab_merges: tuple[dict[str, int], list[tuple[str, str]]] | None = None) -> Any:
    """Build a working CLIPTokenizer from the in-code BPE vocabulary (or the given one)."""
    from transformers import CLIPTokenizer

    vocab, merges = vocab_merges or _clip_vocab_merges()
    pairs: Any = list(merges)  # the backend accepts (a, b) tuples; stubs only admit str
    return CLIPTokenizer(vocab=dict(vocab), merges=pairs, model_max_length=_CLIP_MAX_LEN)


def make_t5_tokenizer() -> Any:
    """Build a working T5 tokenizer from the in-code Unigram vocabulary."""
    from transformers import T5Tokenizer  # same class as T5TokenizerFast in transformers 5

    return T5Tokenizer(vocab=list(_t5_vocab()), extra_ids=0, model_max_length=512)


def _seed(seed: int, offset: int) -> None:
    """Reseed torch so each component's weights depend only on (seed, offset)."""
    import torch

    torch.manual_seed(seed * 1000 + offset)


def _clip_text_model(tokenizer: Any, seed: int, offset: int, *, with_projection: bool = False) -> Any:
    """Build a tiny random CLIP text encoder matched to the tokenizer's vocab and special ids."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=_TEXT_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=_CLIP_MAX_LEN,
        projection_dim=_TEXT_HIDDEN,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    _seed(seed, offset)
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(config)


def _t5_encoder(tokenizer: Any, seed: int, offset: int) -> Any:
    """Build a tiny random T5 (v1.1-style gated-gelu) encoder matched to the tokenizer."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=_TEXT_HIDDEN,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    _seed(seed, offset)
    return T5EncoderModel(config)


def _vae(seed: int, offset: int, **kwargs: Any) -> Any:
    """Build a tiny random AutoencoderKL with VAE scale factor 8."""
    from diffusers import AutoencoderKL

    _seed(seed, offset)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(_VAE_BLOCKS),
        up_block_types=("UpDecoderBlock2D",) * len(_VAE_BLOCKS),
        block_out_channels=_VAE_BLOCKS,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        **kwargs,
    )


def _build_sd15(seed: int) -> Any:
    """Assemble a tiny StableDiffusionPipeline."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer = make_clip_tokenizer()
    text_encoder = _clip_text_model(tokenizer, seed, 1)
    _seed(seed, 2)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=_TEXT_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = _vae(seed, 3, latent_channels=4, scaling_factor=0.18215)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_SD_SCHED),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _build_sdxl(seed: int) -> Any:
    """Assemble a tiny StableDiffusionXLPipeline (two CLIP encoders, text_time conditioning)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    tokenizer, tokenizer_2 = make_clip_tokenizer(), make_clip_tokenizer()
    text_encoder = _clip_text_model(tokenizer, seed, 1)
    text_encoder_2 = _clip_text_model(tokenizer_2, seed, 2, with_projection=True)
    time_embed_dim = 8
    _seed(seed, 3)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1),
        # SDXL concatenates penultimate hidden states of both encoders.
        cross_attention_dim=2 * _TEXT_HIDDEN,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        # 6 micro-conditioning ints (orig size, crop, target size) + pooled projection of encoder 2.
        projection_class_embeddings_input_dim=6 * time_embed_dim + _TEXT_HIDDEN,
        norm_num_groups=32,
    )
    vae = _vae(seed, 4, latent_channels=4, scaling_factor=0.13025)
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_SD_SCHED),
        image_encoder=None,
        feature_extractor=None,
        force_zeros_for_empty_prompt=True,
    )


def _build_flux(seed: int) -> Any:
    """Assemble a tiny FluxPipeline (CLIP pooled + T5 sequence conditioning, flow matching)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    latent_channels = 4
    tokenizer, tokenizer_2 = make_clip_tokenizer(), make_t5_tokenizer()
    text_encoder = _clip_text_model(tokenizer, seed, 1)
    text_encoder_2 = _t5_encoder(tokenizer_2, seed, 2)
    _seed(seed, 3)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * latent_channels,  # latents are packed 2x2 before the transformer
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_TEXT_HIDDEN,  # T5 d_model
        pooled_projection_dim=_TEXT_HIDDEN,  # CLIP pooled output size
        guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),  # must sum to attention_head_dim
    )
    vae = _vae(
        seed,
        4,
        latent_channels=latent_channels,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


_BUILDERS: dict[str, Callable[[int], Any]] = {"sd15": _build_sd15, "sdxl": _build_sdxl, "flux": _build_flux}


def build_tiny_pipeline(family: str, out_dir: pathlib.Path, *, seed: int = 0) -> pathlib.Path:
    """Build a deterministic tiny pipeline of `family` and save it loadable by DiffusionPipeline."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny family {family!r}; expected one of {sorted(_BUILDERS)}")
    import torch

    out_dir = pathlib.Path(out_dir)
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        pipe = _BUILDERS[family](seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
