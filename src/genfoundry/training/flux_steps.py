"""FLUX: rectified-flow matching on packed latents, following diffusers' train_dreambooth_lora_flux.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from genfoundry.training.data import PreparedImage
    from genfoundry.training.steps import Conditioning

# FLUX.1-dev's T5 context length (the pipeline's default and maximum).
MAX_SEQUENCE_LENGTH = 512


class FluxSteps:
    """Training-step logic for FluxPipeline bases."""

    component = "transformer"

    def __init__(self, pipe: Any, *, guidance_scale: float) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        # A private copy on which set_timesteps is never called: its sigmas are the training schedule
        # (uniform for FLUX.1-dev, whose inference shift is dynamic; shifted when the config says so).
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
        self.sigmas = scheduler.sigmas.float().cpu()
        self.timesteps = scheduler.timesteps.float().cpu()
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)
        self.scaling_factor = float(pipe.vae.config.scaling_factor)
        self.shift_factor = float(getattr(pipe.vae.config, "shift_factor", None) or 0.0)
        self.vae_scale_factor = int(pipe.vae_scale_factor)
        self.guidance_scale = guidance_scale
        self.pipeline_cls = type(pipe)

    def encode_prompts(self, pipe: Any, prompts: list[str], device: torch.device) -> Conditioning:
        """T5 sequence embeddings and CLIP pooled embeddings."""
        embeds, pooled, _text_ids = pipe.encode_prompt(
            prompt=prompts,
            prompt_2=None,
            device=device,
            num_images_per_prompt=1,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
        )
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}

    def negative_conditioning(self, pipe: Any, count: int, device: torch.device) -> Conditioning:
        """FLUX.1-dev is guidance-distilled: samples use the guidance input, not a negative prompt."""
        return {}

    def image_extras(self, image: PreparedImage) -> Conditioning:
        """No per-image conditioning besides the latents."""
        return {}

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """FLUX's VAE latents are shifted, then scaled."""
        return (latents - self.shift_factor) * self.scaling_factor

    def example_losses(
        self,
        denoiser: Any,
        latents: torch.Tensor,
        cond: Conditioning,
        extra: Conditioning,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Per-example MSE between the transformer's velocity and (noise - latents) at a uniform sigma."""
        import torch
        import torch.nn.functional as F

        device, dtype = latents.device, latents.dtype
        batch, channels, height, width = latents.shape
        noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
        u = torch.rand((batch,), generator=generator)
        indices = (u * self.num_train_timesteps).long().clamp(max=self.num_train_timesteps - 1)
        timesteps = self.timesteps[indices].to(device)
        sigmas = self.sigmas[indices].to(device, dtype).view(batch, 1, 1, 1)
        noisy = (1.0 - sigmas) * latents + sigmas * noise

        packed = self.pipeline_cls._pack_latents(noisy, batch, channels, height, width)
        image_ids = self.pipeline_cls._prepare_latent_image_ids(batch, height // 2, width // 2, device, dtype)
        prompt_embeds = cond["prompt_embeds"]
        text_ids = torch.zeros(prompt_embeds.shape[1], 3, device=device, dtype=dtype)
        guidance = None
        if getattr(denoiser.config, "guidance_embeds", False):
            guidance = torch.full((batch,), self.guidance_scale, device=device, dtype=torch.float32)
        pred = denoiser(
            hidden_states=packed,
            # The transformer multiplies timesteps by 1000 internally, as its pipeline expects.
            timestep=timesteps / 1000,
            guidance=guidance,
            pooled_projections=cond["pooled_prompt_embeds"],
            encoder_hidden_states=prompt_embeds,
            txt_ids=text_ids,
            img_ids=image_ids,
            return_dict=False,
        )[0]
        pred = self.pipeline_cls._unpack_latents(
            pred,
            height=height * self.vae_scale_factor,
            width=width * self.vae_scale_factor,
            vae_scale_factor=self.vae_scale_factor,
        )
        return F.mse_loss(pred.float(), (noise - latents).float(), reduction="none").mean(dim=(1, 2, 3))

    def sample_kwargs(self, cond: Conditioning, negative: Conditioning) -> dict[str, Any]:
        """Cached embeddings in place of prompts, so samples need no text encoder."""
        return {"prompt_embeds": cond["prompt_embeds"], "pooled_prompt_embeds": cond["pooled_prompt_embeds"]}
