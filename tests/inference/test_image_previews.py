"""Partial-image decoding on the tiny bases: a preview is the pipeline's own VAE decode of its latents, and a float16
SDXL VAE is upcast for it and given back in float16 (the branch a CPU float32 server never takes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genfoundry.inference.image_previews import PreviewCallback, decode_latents
from tests.helpers import load_pipeline


def test_previews_come_at_the_chosen_steps_and_match_the_final_decode(tiny_dir: Path) -> None:
    pipe = load_pipeline(tiny_dir / "sd15", "sd15")
    previews: list[tuple[int, object]] = []
    callback = PreviewCallback(
        family="sd15", width=64, height=64, count=2, emit=lambda index, image: previews.append((index, image))
    )
    latents: list[torch.Tensor] = []

    def record(p: object, step: int, t: object, kwargs: dict) -> dict:
        callback(p, step, t, kwargs)
        latents.append(kwargs["latents"].clone())
        return {}

    with torch.inference_mode():
        pipe(
            "a fox",
            num_inference_steps=6,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(1),
            callback_on_step_end=record,
            callback_on_step_end_tensor_inputs=["latents"],
        )
        assert [index for index, _ in previews] == [0, 1]  # after steps 2 and 4 of 6 (indices 1 and 3)
        [again] = decode_latents(pipe, "sd15", latents[1], 64, 64)
    assert np.array_equal(np.asarray(previews[0][1]), np.asarray(again))


def test_a_float16_vae_is_upcast_for_a_preview_and_given_back(tiny_dir: Path) -> None:
    pipe = load_pipeline(tiny_dir / "sdxl", "sdxl")
    pipe.vae.to(dtype=torch.float16)
    pipe.vae.config.force_upcast = True
    latents = torch.randn(1, pipe.vae.config.latent_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        [image] = decode_latents(pipe, "sdxl", latents, 64, 64)
    assert image.size == (64, 64)
    assert pipe.vae.dtype == torch.float16
