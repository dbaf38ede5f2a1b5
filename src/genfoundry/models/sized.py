"""Random-weight pipelines with the real architecture sizes, for GPU benchmarks where no weights exist.

Also a "medium" SD 1.5-shaped pipeline for CPU benchmarks, whose VAE encoder and text encoder take about the
share of a LoRA training step they take in real SD 1.5.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator
from typing import Any

from genfoundry.models.tiny import make_clip_tokenizer, make_t5_tokenizer

# Stable Diffusion 1.5's published component configs (UNet ~860M, CLIP ViT-L/14 text tower ~123M, VAE ~84M).
_SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
_SD15_VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
_SD15_TEXT: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
}

# SD 1.5's layout with the channel widths divided by 5 (UNet) or 4 (VAE) and a 6-layer CLIP text tower 192
# wide, trained at 256 px: there VAE encode + text encode take ~30% of a LoRA step that encodes every batch
# (CPU time, 2-core x86), against 31-35% for SD 1.5-sized at 512 px; bench/bench_lora_training.py measures both.
_MEDIUM_UNET: dict[str, Any] = {
    **_SD15_UNET,
    "sample_size": 32,
    "block_out_channels": (64, 128, 256, 256),
    "cross_attention_dim": 192,
}
_MEDIUM_VAE: dict[str, Any] = {**_SD15_VAE, "block_out_channels": (32, 64, 128, 128), "sample_size": 256}
_MEDIUM_TEXT: dict[str, Any] = {
    "hidden_size": 192,
    "intermediate_size": 768,
    "num_hidden_layers": 6,
    "num_attention_heads": 6,
}
MEDIUM_RESOLUTION = 256

# FLUX.1-dev's published configs: transformer ~11.9B, T5-XXL encoder ~4.8B, CLIP-L text tower, 16-channel VAE.
_FLUX_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}
_FLUX_VAE: dict[str, Any] = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "latent_channels": 16,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}
_FLUX_T5: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "layer_norm_epsilon": 1e-6,
    "tie_word_embeddings": False,
    "is_encoder_decoder": False,
    "use_cache": False,
}
_FLUX_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}


@contextlib.contextmanager
def _building(seed: int, device: str, dtype: str) -> Iterator[None]:
    """Seeded construction on `device` with `dtype` parameters, leaving global RNG and default dtype as found."""
    import torch

    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        torch.set_default_dtype(getattr(torch, dtype))
        try:
            yield
        finally:
            torch.set_default_dtype(previous)


def _clip_text_model(tokenizer: Any, sizes: dict[str, Any], *, vocab_size: int | None = None) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size or len(tokenizer),
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=sizes["hidden_size"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **sizes,
        )
    )


def _sd15_style_pipeline(
    unet_config: dict[str, Any],
    vae_config: dict[str, Any],
    text: dict[str, Any],
    seed: int,
    device: str,
    dtype: str,
    *,
    vocab_size: int | None = None,
) -> Any:
    """A StableDiffusionPipeline with random weights built on `device` in `dtype`; `vocab_size` None: the small
    tokenizer's own."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer = make_clip_tokenizer()
    with _building(seed, device, dtype):
        text_encoder = _clip_text_model(tokenizer, text, vocab_size=vocab_size)
        unet = UNet2DConditionModel(**unet_config)
        vae = AutoencoderKL(**vae_config)
    return StableDiffusionPipeline(  # diffusers' mixins are invisible to mypy
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sd15_sized_pipeline(*, seed: int = 0, device: str = "cpu", dtype: str = "float32") -> Any:
    """An SD 1.5-sized StableDiffusionPipeline in memory (`device="meta"` builds it without weights); CLIP's full
    49408-token embedding table, so the text encoder has SD 1.5's 123M parameters."""
    return _sd15_style_pipeline(_SD15_UNET, _SD15_VAE, _SD15_TEXT, seed, device, dtype, vocab_size=49408)


def build_sd15_sized_pipeline(out_dir: pathlib.Path, *, seed: int = 0, dtype: str = "float16") -> pathlib.Path:
    """An SD 1.5-sized StableDiffusionPipeline with random weights, saved in `dtype`."""
    import torch

    pipe = sd15_sized_pipeline(seed=seed)
    pipe.to(dtype=getattr(torch, dtype))
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def sd15_medium_pipeline(*, seed: int = 0, device: str = "cpu", dtype: str = "float32") -> Any:
    """The medium SD 1.5-shaped pipeline (UNet 35M, VAE 5M, text tower 3M parameters) in memory."""
    return _sd15_style_pipeline(_MEDIUM_UNET, _MEDIUM_VAE, _MEDIUM_TEXT, seed, device, dtype)


def build_sd15_medium_pipeline(out_dir: pathlib.Path, *, seed: int = 0, dtype: str = "float32") -> pathlib.Path:
    """The medium SD 1.5-shaped pipeline with random weights, saved in `dtype` (a CPU benchmark model)."""
    pipe = sd15_medium_pipeline(seed=seed, dtype=dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


# A FLUX.1-dev-wide pipeline with fewer blocks (4 double-stream of 19, 8 single-stream of 38, 4 T5 layers of 24):
# each block costs what FLUX.1-dev's does, so a step costs ~12/57 of FLUX.1-dev's, and it builds, saves and loads
# in seconds where the full ~34 GB one takes minutes (bench/gpu_quick.py).
FLUX_REDUCED_DEPTH = {"double_blocks": 4, "single_blocks": 8, "t5_layers": 4}


def flux_sized_pipeline(
    *,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "bfloat16",
    double_blocks: int = _FLUX_TRANSFORMER["num_layers"],
    single_blocks: int = _FLUX_TRANSFORMER["num_single_layers"],
    t5_layers: int = _FLUX_T5["num_layers"],
) -> Any:
    """A FLUX.1-dev-sized FluxPipeline in memory (~17B parameters: ~34 GB in bf16; `device="meta"` for none);
    fewer blocks or T5 layers keep every width (FLUX_REDUCED_DEPTH)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer, tokenizer_2 = make_clip_tokenizer(), make_t5_tokenizer()
    with _building(seed, device, dtype):
        text_encoder = _clip_text_model(tokenizer, _SD15_TEXT, vocab_size=49408)
        text_encoder_2 = T5EncoderModel(
            T5Config(
                pad_token_id=tokenizer_2.pad_token_id,
                eos_token_id=tokenizer_2.eos_token_id,
                **{**_FLUX_T5, "num_layers": t5_layers},
            )
        )
        transformer = FluxTransformer2DModel(
            **{**_FLUX_TRANSFORMER, "num_layers": double_blocks, "num_single_layers": single_blocks}
        )
        vae = AutoencoderKL(**_FLUX_VAE)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**_FLUX_SCHEDULER),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def build_flux_sized_pipeline(
    out_dir: pathlib.Path, *, seed: int = 0, dtype: str = "bfloat16", device: str | None = None
) -> pathlib.Path:
    """A FLUX.1-dev-sized FluxPipeline with random weights, saved in `dtype`; built on the GPU when there is one
    (random init of 17B parameters is minutes on a CPU), needing ~34 GB of (GPU) memory and disk in bf16."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = flux_sized_pipeline(seed=seed, device=device, dtype=dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
