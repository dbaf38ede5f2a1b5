"""mini-sd15: a small Stable Diffusion 1.5 pipeline (the real diffusers layout and classes) that learns the synthetic
scenes of `mini_scenes`, so an offline generation shows the shape and colours a prompt asks for.

This module holds its architecture (untrained); `scripts/train_mini_models.py` pretrains it and the weights ship in
the package (`genfoundry/data/mini/sd15`), installed into the home by `genfoundry models build-tiny`.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

MINI_SD15_ID = "mini-sd15"
MINI_SD15_SUBDIR = "mini-sd15"
VAE_FACTOR = 2  # 64 px images, 32 x 32 latents: shapes stay sharp through the colour-preserving VAE
# Defaults that give a clean image: 20 Euler steps at guidance 4 (what the model card measures).
DEFAULTS = "{ width = 64, height = 64, steps = 20, guidance_scale = 4.0 }"
_TEXT_HIDDEN = 64
_CLIP_MAX_LEN = 32  # the longest caption is 15 tokens; user prompts are truncated like SD 1.5's at 77

# v-prediction on a zero-terminal-SNR schedule: the first denoising step sees pure noise, as in training, so the
# background colour comes from the prompt rather than from a leaked mean (SD 2.x's and "Common Diffusion Noise
# Schedules and Sample Steps are Flawed"'s fix); trailing spacing starts sampling at the last timestep.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "steps_offset": 1,
}


def corpus() -> tuple[str, ...]:
    """What the tokenizer is learned from: every scene caption plus the tiny models' general prompts, so the
    vocabulary's words are single tokens and other words still split into known pieces."""
    from genfoundry.models.mini_scenes import POSITIONS, Scene, all_triples
    from genfoundry.models.tiny import corpus_lines

    captions = [Scene(c, s, b, p).caption for c, s, b in all_triples() for p in (None, *POSITIONS)]
    return (*captions, *corpus_lines())


@functools.lru_cache(maxsize=1)
def _vocab_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    from genfoundry.models.tiny import learn_clip_bpe

    return learn_clip_bpe(corpus(), 800)


def make_tokenizer() -> Any:
    from genfoundry.models.tiny import make_clip_tokenizer

    tokenizer = make_clip_tokenizer(_vocab_merges())
    tokenizer.model_max_length = _CLIP_MAX_LEN
    return tokenizer


def build_untrained(seed: int = 0) -> Any:
    """The mini-sd15 pipeline with fresh weights (the colour VAE is exact by construction and stays untrained)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from genfoundry.models.colour_vae import colour_vae

    tokenizer = make_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=_TEXT_HIDDEN,
            intermediate_size=4 * _TEXT_HIDDEN,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=_CLIP_MAX_LEN,
            projection_dim=_TEXT_HIDDEN,
            hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=64 // VAE_FACTOR,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=_TEXT_HIDDEN,
        attention_head_dim=16,
        norm_num_groups=16,
    )
    return StableDiffusionPipeline(
        vae=colour_vae(factor=VAE_FACTOR, sample_size=64),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def packaged_dir() -> Path | None:
    """The pretrained weights shipped in the package, or None in a checkout where they were never trained."""
    folder = Path(str(resources.files("genfoundry").joinpath("data", "mini", "sd15")))
    return folder if (folder / "model_index.json").exists() else None


def install(tiny_dir: Path, *, force: bool = False) -> tuple[Path | None, bool]:
    """Copy the packaged mini-sd15 into the tiny-models folder (again when the package's weights changed).

    Returns (its folder, whether it was copied now); (None, False) when the package holds no weights."""
    from genfoundry.models.mini_install import install_packaged

    return install_packaged(packaged_dir(), tiny_dir, MINI_SD15_SUBDIR, force=force)
