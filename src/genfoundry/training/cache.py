"""Encode every image (VAE) and caption (text encoders) once, keep the results, then let the encoders go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genfoundry.training.data import Bucket, DatasetItem, load_bucketed_image

if TYPE_CHECKING:
    import torch

    from genfoundry.training.steps import Conditioning, FamilySteps

_VAE_BATCH = 8
_TEXT_BATCH = 16


@dataclass
class EncodedDataset:
    """Per-item VAE posteriors and extras, and the text conditioning of each distinct caption (all on CPU)."""

    latent_mean: list[torch.Tensor]
    latent_std: list[torch.Tensor]
    extras: list[Conditioning]
    text: Conditioning  # one row per distinct caption
    caption_row: list[int]  # item index -> row in `text`
    captions: list[str] = field(default_factory=list)  # row -> caption
    # Set while the text encoders train: captions are encoded at each batch (with gradients), not read cached.
    live_text: Callable[[list[str]], Conditioning] | None = None

    def batch(
        self,
        indices: list[int],
        generator: torch.Generator,
        steps: FamilySteps,
        device: torch.device,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, Conditioning, Conditioning]:
        """Latents (a fresh draw from each cached posterior), text conditioning and extras for one batch."""
        import torch

        mean = torch.stack([self.latent_mean[i] for i in indices])
        std = torch.stack([self.latent_std[i] for i in indices])
        # Sampling the posterior per step (not its mean) keeps the VAE's noise, as encoding every step would.
        latents = steps.normalize_latents(mean + std * torch.randn(mean.shape, generator=generator))
        if self.live_text is not None:
            encoded = self.live_text([self.captions[self.caption_row[i]] for i in indices])
            cond = {name: value.to(device, dtype) for name, value in encoded.items()}
        else:
            rows = torch.tensor([self.caption_row[i] for i in indices])
            cond = {name: value[rows].to(device, dtype) for name, value in self.text.items()}
        extra = {
            name: torch.stack([self.extras[i][name] for i in indices]).to(device, dtype)
            for name in self.extras[indices[0]]
        }
        return latents.to(device, dtype), cond, extra


def encode_texts(pipe: Any, steps: FamilySteps, prompts: list[str], device: torch.device) -> Conditioning:
    """Text conditioning for `prompts` in chunks, moved to the CPU."""
    import torch

    parts: list[Conditioning] = []
    with torch.no_grad():
        for start in range(0, len(prompts), _TEXT_BATCH):
            encoded = steps.encode_prompts(pipe, prompts[start : start + _TEXT_BATCH], device)
            parts.append({name: value.detach().cpu() for name, value in encoded.items()})
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


def encode_dataset(
    pipe: Any,
    steps: FamilySteps,
    items: list[DatasetItem],
    groups: dict[Bucket, list[int]],
    device: torch.device,
    log: Callable[[str], None],
) -> EncodedDataset:
    """Run the VAE over every image at its bucket size and the text encoders over every distinct caption."""
    import torch

    captions = sorted({item.caption for item in items})
    text = encode_texts(pipe, steps, captions, device)
    row_of = {caption: row for row, caption in enumerate(captions)}

    # float32 VAE: it runs once, and SDXL's VAE overflows in fp16 (diffusers warns on a no-op dtype cast).
    vae = pipe.vae.to(device) if pipe.vae.dtype == torch.float32 else pipe.vae.to(device, dtype=torch.float32)
    mean: list[torch.Tensor | None] = [None] * len(items)
    std: list[torch.Tensor | None] = [None] * len(items)
    extras: list[Conditioning] = [{} for _ in items]
    with torch.no_grad():
        for bucket, indices in groups.items():
            for start in range(0, len(indices), _VAE_BATCH):
                chunk = indices[start : start + _VAE_BATCH]
                prepared = [load_bucketed_image(items[i].image_path, bucket) for i in chunk]
                pixels = torch.cat([p.pixels for p in prepared]).to(device, torch.float32)
                posterior = vae.encode(pixels).latent_dist
                for row, index in enumerate(chunk):
                    mean[index] = posterior.mean[row].cpu()
                    std[index] = posterior.std[row].cpu()
                    extras[index] = steps.image_extras(prepared[row])
    log(f"cached {len(items)} image latents in {len(groups)} buckets and {len(captions)} caption embeddings")
    return EncodedDataset(
        latent_mean=[m for m in mean if m is not None],
        latent_std=[s for s in std if s is not None],
        extras=extras,
        text=text,
        caption_row=[row_of[item.caption] for item in items],
        captions=captions,
    )


def text_encoders_to(pipe: Any, device: torch.device) -> None:
    """Put the pipeline's text encoders on `device` for the one-time encoding."""
    for name in ("text_encoder", "text_encoder_2"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.to(device)


def release_encoders(pipe: Any, *, keep_vae: bool, keep_text_encoders: bool = False) -> None:
    """Drop the text encoders (unless they train); park the VAE on the CPU for samples, or drop it too."""
    from diffusers.training_utils import free_memory

    for name in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, name, None) is not None and not keep_text_encoders:
            setattr(pipe, name, None)
    if keep_vae:
        pipe.vae.to("cpu")
    else:
        pipe.vae = None
    free_memory()
