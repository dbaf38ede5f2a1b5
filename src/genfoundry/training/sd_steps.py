"""SD 1.5 / SDXL: DDPM noise prediction on the UNet (epsilon or v-prediction, as the scheduler config says)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid

if TYPE_CHECKING:
    import torch

    from genfoundry.training.data import PreparedImage
    from genfoundry.training.steps import Conditioning


class SdSteps:
    """Training-step logic for StableDiffusionPipeline and StableDiffusionXLPipeline bases."""

    component = "unet"

    def __init__(self, pipe: Any, *, sdxl: bool) -> None:
        from diffusers import DDPMScheduler

        self.sdxl = sdxl
        # Training always adds noise the DDPM way, whatever sampler the pipeline ships with.
        self.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = str(self.scheduler.config.prediction_type)
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise Invalid(
                f"base model scheduler predicts {self.prediction_type!r}; LoRA training supports epsilon and "
                "v_prediction",
                param="base_source",
            )
        self.num_train_timesteps = int(self.scheduler.config.num_train_timesteps)
        self.scaling_factor = float(pipe.vae.config.scaling_factor)

    def encode_prompts(self, pipe: Any, prompts: list[str], device: torch.device) -> Conditioning:
        """UNet cross-attention states (SDXL: both encoders' penultimate layers) and SDXL's pooled embeds."""
        if self.sdxl:
            embeds, _neg, pooled, _neg_pooled = pipe.encode_prompt(
                prompt=prompts, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
            return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
        embeds, _neg = pipe.encode_prompt(
            prompt=prompts, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        return {"prompt_embeds": embeds}

    def negative_conditioning(self, pipe: Any, count: int, device: torch.device) -> Conditioning:
        """The pipeline's own unconditional embeddings (SDXL may force zeros for the empty prompt)."""
        out = pipe.encode_prompt(
            prompt=[""] * count, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True
        )
        if self.sdxl:
            return {"prompt_embeds": out[1], "pooled_prompt_embeds": out[3]}
        return {"prompt_embeds": out[1]}

    def image_extras(self, image: PreparedImage) -> Conditioning:
        """SDXL's micro-conditioning: original size, crop top-left and target size, as its pipeline passes."""
        if not self.sdxl:
            return {}
        import torch

        width, height = image.bucket
        values = (*image.original_size, *image.crop_top_left, height, width)
        return {"time_ids": torch.tensor(values, dtype=torch.float32)}

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """SD latents are only scaled."""
        return latents * self.scaling_factor

    def example_losses(
        self,
        denoiser: Any,
        latents: torch.Tensor,
        cond: Conditioning,
        extra: Conditioning,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Per-example MSE between the UNet's prediction and the noise (or velocity) at a uniform timestep."""
        import torch
        import torch.nn.functional as F

        device = latents.device
        # Drawn on the CPU generator, then moved: the same seed gives the same noise on any device.
        noise = torch.randn(latents.shape, generator=generator).to(device, latents.dtype)
        timesteps = torch.randint(0, self.num_train_timesteps, (latents.shape[0],), generator=generator).to(device)
        noisy = self.scheduler.add_noise(latents, noise, timesteps)
        velocity = self.prediction_type == "v_prediction"
        target = self.scheduler.get_velocity(latents, noise, timesteps) if velocity else noise
        added = None
        if self.sdxl:
            added = {"text_embeds": cond["pooled_prompt_embeds"], "time_ids": extra["time_ids"]}
        pred = denoiser(
            noisy, timesteps, encoder_hidden_states=cond["prompt_embeds"], added_cond_kwargs=added, return_dict=False
        )[0]
        return F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))

    def sample_kwargs(self, cond: Conditioning, negative: Conditioning) -> dict[str, Any]:
        """Cached embeddings in place of prompts, so samples need no text encoder."""
        kwargs = {"prompt_embeds": cond["prompt_embeds"], "negative_prompt_embeds": negative["prompt_embeds"]}
        if self.sdxl:
            kwargs["pooled_prompt_embeds"] = cond["pooled_prompt_embeds"]
            kwargs["negative_pooled_prompt_embeds"] = negative["pooled_prompt_embeds"]
        return kwargs
