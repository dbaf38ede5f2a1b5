"""Sample images for the validation prompts with the LoRA being trained, from cached prompt embeddings."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from genfoundry.training.config import LoraTrainingConfig
    from genfoundry.training.steps import Conditioning, FamilySteps

SAMPLES_DIR = "samples"


@dataclass
class SamplePrompts:
    """Validation prompts and their embeddings, encoded with the training captions before the encoders went."""

    prompts: tuple[str, ...]
    cond: Conditioning
    negative: Conditioning


def encode_sample_prompts(
    pipe: Any, steps: FamilySteps, prompts: tuple[str, ...], device: torch.device
) -> SamplePrompts:
    """Embed the validation prompts (and the unconditional prompt) while the text encoders are loaded."""
    import torch

    from genfoundry.training.cache import encode_texts

    with torch.no_grad():
        negative = steps.negative_conditioning(pipe, len(prompts), device)
    return SamplePrompts(
        prompts=prompts,
        cond=encode_texts(pipe, steps, list(prompts), device),
        negative={name: value.detach().cpu() for name, value in negative.items()},
    )


def generate_samples(
    pipe: Any,
    steps: FamilySteps,
    config: LoraTrainingConfig,
    sample_prompts: SamplePrompts,
    *,
    step: int,
    output_dir: Path,
    device: torch.device,
    dtype: torch.dtype,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]],
) -> list[tuple[str, Path]]:
    """One PNG per prompt under `output_dir/samples`, seeded by (config.seed, prompt index) so steps compare."""
    import torch

    folder = Path(output_dir) / SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    pipe.vae.to(device)  # parked on the CPU between samples
    out: list[tuple[str, Path]] = []
    try:
        for index, prompt in enumerate(sample_prompts.prompts):
            cond = {k: v[index : index + 1].to(device, dtype) for k, v in sample_prompts.cond.items()}
            negative = {k: v[index : index + 1].to(device, dtype) for k, v in sample_prompts.negative.items()}
            generator = torch.Generator("cpu").manual_seed(config.seed + index)
            with autocast():
                image = pipe(
                    **steps.sample_kwargs(cond, negative),
                    num_inference_steps=config.sample_steps,
                    guidance_scale=config.sample_guidance_scale,
                    height=config.sample_resolution,
                    width=config.sample_resolution,
                    generator=generator,
                    output_type="pil",
                ).images[0]
            path = folder / f"step_{step:06d}_{index}.png"
            tmp = folder / f".{path.stem}-{uuid.uuid4().hex[:8]}.png"
            image.save(tmp)
            tmp.replace(path)
            out.append((prompt, path))
    finally:
        pipe.vae.to("cpu")
    return out
