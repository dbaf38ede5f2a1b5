"""Partial images while a pipeline denoises: the current latents decoded by the base's own VAE at evenly spaced
steps, through diffusers' `callback_on_step_end` (runs on the base's worker thread, inside the pipeline call).

Decoding the latents themselves (not a predicted x0) costs one VAE decode per preview; early previews are
noisy and later ones close to the final image, as a sampler's progress looks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image


def preview_steps(total: int, count: int) -> list[int]:
    """0-based step indices after which a preview is decoded: `count` evenly spaced ones, never the last step
    (that one is the final image), so a short run may give fewer."""
    steps = {round(total * (j + 1) / (count + 1)) - 1 for j in range(count)}
    return sorted(step for step in steps if 0 <= step < total - 1)


def decode_latents(pipe: Any, family: str, latents: torch.Tensor, width: int, height: int) -> list[Image]:
    """The pipeline's latents as images, the way its own last step decodes them."""
    import torch

    vae = pipe.vae
    if family == "flux":  # packed 2×2 patches: unpack to the VAE's layout, and undo its shift
        latents = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
        latents = latents / vae.config.scaling_factor + vae.config.shift_factor
    else:
        latents = latents / vae.config.scaling_factor
    # SDXL's VAE overflows in float16; its pipeline upcasts it for the final decode, and so does a preview.
    upcast = vae.dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))
    if upcast:
        vae.to(dtype=torch.float32)
    try:
        decoded = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
    finally:
        if upcast:
            vae.to(dtype=torch.float16)
    return list(pipe.image_processor.postprocess(decoded, output_type="pil"))


class PreviewCallback:
    """A `callback_on_step_end` that hands `emit(index, image)` each preview of a one-image call."""

    def __init__(self, *, family: str, width: int, height: int, count: int, emit: Callable[[int, Image], None]) -> None:
        self.family = family
        self.width = width
        self.height = height
        self.count = count
        self.emit = emit
        self._steps: list[int] | None = None

    def __call__(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._steps is None:  # image-to-image runs fewer steps than asked: count the ones it runs
            self._steps = preview_steps(int(pipe.num_timesteps), self.count)
        if step in self._steps:
            [image] = decode_latents(pipe, self.family, callback_kwargs["latents"], self.width, self.height)
            self.emit(self._steps.index(step), image)
        return {}
