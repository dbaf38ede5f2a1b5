"""What differs between families in a training step, behind one small interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from genfoundry.training.config import LoraTrainingConfig
    from genfoundry.training.data import PreparedImage

Conditioning = dict[str, "torch.Tensor"]  # named text-conditioning tensors, batch first


class FamilySteps(Protocol):
    """The family-specific parts of a LoRA run; everything else in lora.py is shared."""

    component: str  # the pipeline attribute that carries the LoRA: "unet" or "transformer"

    def encode_prompts(self, pipe: Any, prompts: list[str], device: torch.device) -> Conditioning:
        """Text conditioning for `prompts`, computed once and cached for the whole run."""
        ...

    def negative_conditioning(self, pipe: Any, count: int, device: torch.device) -> Conditioning:
        """Unconditional embeddings for samples with classifier-free guidance; empty when unused."""
        ...

    def image_extras(self, image: PreparedImage) -> Conditioning:
        """Per-image conditioning besides the text (SDXL's size and crop micro-conditioning)."""
        ...

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE latents as the denoiser sees them (scaled, shifted)."""
        ...

    def example_losses(
        self,
        denoiser: Any,
        latents: torch.Tensor,
        cond: Conditioning,
        extra: Conditioning,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """The denoising loss of each example of one micro-batch, shape (batch,); randomness from `generator`."""
        ...

    def sample_kwargs(self, cond: Conditioning, negative: Conditioning) -> dict[str, Any]:
        """Pipeline keyword arguments that replace the prompt by cached embeddings."""
        ...


def family_steps(config: LoraTrainingConfig, pipe: Any) -> FamilySteps:
    """The steps object for the config's family."""
    if config.family == "flux":
        from genfoundry.training.flux_steps import FluxSteps

        return FluxSteps(pipe, guidance_scale=config.train_guidance_scale)
    from genfoundry.training.sd_steps import SdSteps

    return SdSteps(pipe, sdxl=config.family == "sdxl")
