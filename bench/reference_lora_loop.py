"""A reference LoRA training loop written the way diffusers' examples/text_to_image/train_text_to_image_lora.py
runs (and its SDXL / FLUX siblings): the VAE and text encoders stay on the device for the whole run and encode
every batch's images and prompts at every step.

It reads the recipe's LoraTrainingConfig, so base model, precision policy, LoRA targets / rank / alpha, optimizer,
learning rate, clipping, gradient checkpointing, batch size and steps are the recipe's; only the caching differs.
Decoded pixels and token ids are prepared once before the loop (a DataLoader with workers hides that work), so
what the comparison measures per step is the encoders' forward passes and the memory they hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from genfoundry.training.config import LoraTrainingConfig
    from genfoundry.training.data import PreparedImage

PHASES = ("vae", "text", "denoiser")  # denoiser: forward, backward, clipping and the optimizer update
FLUX_MAX_SEQUENCE_LENGTH = 512  # FLUX.1-dev's T5 context, as the FLUX training script uses


@dataclass
class ReferenceResult:
    """What a reference run measured: losses, when each step ended, where the time went, the trained LoRA."""

    losses: list[float]
    step_ends: list[float]  # time.perf_counter() after each optimizer step
    phase_seconds: dict[str, float]  # summed over the run, per phase in PHASES
    lora_state: dict[str, torch.Tensor]  # PEFT names, on the CPU
    phase_flops: dict[str, int] = field(default_factory=dict)  # one micro-batch, when asked for
    flop_count_s: float = 0.0  # time the FLOP count took, after the last step


def run_reference_loop(
    config: LoraTrainingConfig,
    dataset_dir: Path,
    *,
    count_flops: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> ReferenceResult:
    """Train a LoRA for `config.max_steps` optimizer steps, encoding images and captions at every step."""
    import torch
    from peft.utils import get_peft_model_state_dict

    from genfoundry.training import lora_setup
    from genfoundry.training.data import load_bucketed_image, load_dataset_items

    if config.max_steps is None:
        raise ValueError("the reference loop runs max_steps; set max_steps, not epochs")
    # 1. Accelerator, precision and the base model: the recipe's own policy and loader.
    accelerator, weight_dtype = lora_setup.make_accelerator(config)
    device = accelerator.device
    torch.manual_seed(config.seed)
    pipe = lora_setup.load_base_pipeline(config, weight_dtype)
    parts = _family_parts(config, pipe, device, weight_dtype)

    # 2. LoRA on the frozen denoiser; trained weights in float32 as diffusers' scripts cast them.
    denoiser = parts.denoiser
    _add_lora(denoiser, config, device, weight_dtype)
    params = [p for p in denoiser.parameters() if p.requires_grad]
    optimizer = lora_setup.make_optimizer(config, params, lambda _message: None)
    lr_scheduler = lora_setup.make_lr_scheduler(config, optimizer, config.max_steps)
    denoiser, optimizer = accelerator.prepare(denoiser, optimizer)

    # 3. The data, decoded and tokenized once: center-cropped squares at the training resolution.
    items = load_dataset_items(dataset_dir, config.trigger_word)
    size = (config.resolution, config.resolution)
    images = [load_bucketed_image(item.image_path, size) for item in items]
    pixels = torch.cat([image.pixels for image in images])
    token_ids = parts.tokenize([item.caption for item in items])
    extras = parts.image_extras(images)
    order = _BatchOrder(len(items), config.batch_size, config.seed)

    # 4. The loop: encode, noise, predict, backward, step.
    clock = _PhaseClock(device.type == "cuda")
    losses: list[float] = []
    step_ends: list[float] = []
    accumulation = config.gradient_accumulation_steps
    for step in range(config.max_steps):
        total = 0.0
        for _k in range(accumulation):
            batch = order.next()
            start = clock.mark()
            with torch.no_grad():
                latents = parts.encode_images(pixels[batch].to(device, parts.vae_dtype))
            after_vae = clock.mark()
            with torch.no_grad():
                cond = parts.encode_text({name: ids[batch].to(device) for name, ids in token_ids.items()})
            after_text = clock.mark()
            with accelerator.autocast():
                loss = parts.loss(denoiser, latents.to(weight_dtype), cond, {k: v[batch] for k, v in extras.items()})
            accelerator.backward(loss / accumulation)
            total += float(loss.detach())
            clock.add("vae", start, after_vae)
            clock.add("text", after_vae, after_text)
            clock.add("denoiser", after_text, None)
        update = clock.mark()
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        clock.add("denoiser", update, None)
        losses.append(total / accumulation)
        step_ends.append(time.perf_counter())
        if on_step is not None:
            on_step(step + 1, losses[-1])

    flops: dict[str, int] = {}
    counting = time.perf_counter()
    if count_flops:  # one more micro-batch, outside the timed loop
        batch = order.next()
        flops = _count_flops(
            parts,
            denoiser,
            accelerator.autocast,
            accelerator.backward,
            pixels[batch],
            {name: ids[batch] for name, ids in token_ids.items()},
            {k: v[batch] for k, v in extras.items()},
            device,
        )
    counted_s = time.perf_counter() - counting
    model = accelerator.unwrap_model(denoiser)
    lora_state = {k: v.detach().to("cpu") for k, v in get_peft_model_state_dict(model).items()}
    return ReferenceResult(
        losses=losses,
        step_ends=step_ends,
        phase_seconds=clock.totals(),
        lora_state=lora_state,
        phase_flops=flops,
        flop_count_s=counted_s,
    )


def _add_lora(denoiser: Any, config: LoraTrainingConfig, device: torch.device, dtype: torch.dtype) -> None:
    """PEFT LoRA on the config's target modules, gaussian init, as the diffusers LoRA scripts add it."""
    import torch
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    denoiser.requires_grad_(False)
    alpha: Any = int(config.alpha) if float(config.alpha).is_integer() else config.alpha
    lora_config = LoraConfig(
        r=config.rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(config.target_modules)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        denoiser.add_adapter(lora_config)
    denoiser.to(device, dtype=dtype)
    cast_training_params(denoiser, dtype=torch.float32)
    if config.gradient_checkpointing:
        denoiser.enable_gradient_checkpointing()
    denoiser.train()


class _BatchOrder:
    """A fresh seeded permutation per epoch cut into batches (the last may be short), like a shuffling DataLoader."""

    def __init__(self, count: int, batch_size: int, seed: int) -> None:
        import torch

        self._count, self._batch_size = count, batch_size
        self._generator = torch.Generator().manual_seed(seed)
        self._pending: list[list[int]] = []

    def next(self) -> list[int]:
        import torch

        if not self._pending:
            order = torch.randperm(self._count, generator=self._generator).tolist()
            self._pending = [order[i : i + self._batch_size] for i in range(0, self._count, self._batch_size)]
        return self._pending.pop(0)


class _PhaseClock:
    """Phase timings; on CUDA with events read once at the end, so timing adds no synchronization to the loop."""

    def __init__(self, cuda: bool) -> None:
        self._cuda = cuda
        self._spans: list[tuple[str, Any, Any]] = []

    def mark(self) -> Any:
        import torch

        if not self._cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def add(self, phase: str, start: Any, end: Any | None) -> None:
        """Charge `phase` with start..end (None: now)."""
        self._spans.append((phase, start, self.mark() if end is None else end))

    def totals(self) -> dict[str, float]:
        import torch

        seconds = dict.fromkeys(PHASES, 0.0)
        if self._cuda:
            torch.cuda.synchronize()
        for phase, start, end in self._spans:
            seconds[phase] += start.elapsed_time(end) / 1000 if self._cuda else end - start
        return seconds


def meta_phase_flops(config: LoraTrainingConfig, pipe: Any, batch_size: int) -> dict[str, int]:
    """FLOPs per phase of one reference micro-batch, for a pipeline built on the meta device (no weights)."""
    import contextlib

    import torch

    device = torch.device("meta")
    parts = _family_parts(config, pipe, device, torch.float32)
    _add_lora(parts.denoiser, config, device, torch.float32)
    side = config.resolution
    pixels = torch.zeros(batch_size, 3, side, side, device=device)
    token_ids = parts.tokenize(["a photo of a cat"] * batch_size)
    extras = {"time_ids": torch.zeros(batch_size, 6)} if config.family == "sdxl" else {}
    return _count_flops(
        parts, parts.denoiser, contextlib.nullcontext, torch.Tensor.backward, pixels, token_ids, extras, device
    )


def _count_flops(
    parts: _SdParts | _FluxParts,
    denoiser: Any,
    autocast: Callable[[], Any],
    backward: Callable[[torch.Tensor], None],
    pixels: torch.Tensor,
    token_ids: dict[str, torch.Tensor],
    extras: dict[str, torch.Tensor],
    device: torch.device,
) -> dict[str, int]:
    """FLOPs of each phase for one micro-batch (`pixels`), counted by torch while it runs."""
    import contextlib

    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    # The counter knows CUDA's fused attention kernels but not the CPU one, whose FLOPs it would drop; the
    # math backend spells attention out in matmuls it counts.
    attention = contextlib.nullcontext() if device.type == "cuda" else sdpa_kernel(SDPBackend.MATH)
    counts: dict[str, int] = {}
    with attention:
        with torch.no_grad(), FlopCounterMode(display=False) as vae_counter:
            latents = parts.encode_images(pixels.to(device, parts.vae_dtype))
        counts["vae"] = int(vae_counter.get_total_flops())
        with torch.no_grad(), FlopCounterMode(display=False) as text_counter:
            cond = parts.encode_text({name: ids.to(device) for name, ids in token_ids.items()})
        counts["text"] = int(text_counter.get_total_flops())
        with FlopCounterMode(display=False) as denoiser_counter:
            with autocast():
                loss = parts.loss(denoiser, latents.to(parts.dtype), cond, extras)
            backward(loss)
        counts["denoiser"] = int(denoiser_counter.get_total_flops())
    denoiser.zero_grad(set_to_none=True)
    return counts


def _family_parts(config: LoraTrainingConfig, pipe: Any, device: torch.device, dtype: torch.dtype) -> Any:
    if config.family == "flux":
        return _FluxParts(pipe, device, dtype, guidance_scale=config.train_guidance_scale)
    return _SdParts(pipe, device, dtype, sdxl=config.family == "sdxl")


class _SdParts:
    """SD 1.5 / SDXL: DDPM noise (or v) prediction; SDXL adds its second encoder, pooled embeds and time ids."""

    def __init__(self, pipe: Any, device: torch.device, dtype: torch.dtype, *, sdxl: bool) -> None:
        import torch
        from diffusers import DDPMScheduler

        self.sdxl, self.device, self.dtype = sdxl, device, dtype
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.denoiser = pipe.unet
        # The SDXL script keeps its VAE in float32 (fp16 overflows); the SD script casts it to the weight dtype.
        self.vae_dtype = torch.float32 if sdxl else dtype
        self.vae = pipe.vae.to(device, dtype=self.vae_dtype).requires_grad_(False)
        encoders = [pipe.text_encoder, pipe.text_encoder_2] if sdxl else [pipe.text_encoder]
        self.text_encoders = [e.to(device, dtype=dtype).requires_grad_(False) for e in encoders]
        self.tokenizers = [pipe.tokenizer, pipe.tokenizer_2] if sdxl else [pipe.tokenizer]

    def tokenize(self, captions: list[str]) -> dict[str, torch.Tensor]:
        return {
            f"input_ids_{i}": tok(
                captions, max_length=tok.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
            ).input_ids
            for i, tok in enumerate(self.tokenizers)
        }

    def image_extras(self, images: list[PreparedImage]) -> dict[str, torch.Tensor]:
        """SDXL's (original size, crop top-left, target size) per image."""
        import torch

        if not self.sdxl:
            return {}
        rows = [[*im.original_size, *im.crop_top_left, im.bucket[1], im.bucket[0]] for im in images]
        return {"time_ids": torch.tensor(rows, dtype=torch.float32)}

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        latents: torch.Tensor = self.vae.encode(pixels).latent_dist.sample()
        return latents * float(self.vae.config.scaling_factor)

    def encode_text(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        import torch

        if not self.sdxl:
            return {"encoder_hidden_states": self.text_encoders[0](ids["input_ids_0"])[0]}
        # SDXL: both encoders' penultimate hidden states side by side; pooled embeds from the second.
        hidden: list[torch.Tensor] = []
        for i, encoder in enumerate(self.text_encoders):
            out = encoder(ids[f"input_ids_{i}"], output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
        pooled: torch.Tensor = out[0]  # the second encoder's projected pooled output
        return {"encoder_hidden_states": torch.cat(hidden, dim=-1), "text_embeds": pooled}

    def loss(
        self, denoiser: Any, latents: torch.Tensor, cond: dict[str, torch.Tensor], extras: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        noise = torch.randn_like(latents)
        bsz = latents.shape[0]
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (bsz,), device=latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        added = None
        if self.sdxl:
            time_ids = extras["time_ids"].to(latents.device, self.dtype)
            added = {"time_ids": time_ids, "text_embeds": cond["text_embeds"]}
        pred = denoiser(noisy, timesteps, cond["encoder_hidden_states"], added_cond_kwargs=added).sample
        return F.mse_loss(pred.float(), target.float(), reduction="mean")


class _FluxParts:
    """FLUX: rectified-flow velocity on packed latents, CLIP pooled + T5 sequence conditioning."""

    def __init__(self, pipe: Any, device: torch.device, dtype: torch.dtype, *, guidance_scale: float) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        self.device, self.dtype, self.vae_dtype = device, dtype, dtype
        self.pipeline_cls = type(pipe)
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
        self.sigmas, self.timesteps = scheduler.sigmas.float(), scheduler.timesteps.float()
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)
        self.guidance_scale = guidance_scale
        self.vae_scale_factor = int(pipe.vae_scale_factor)
        self.denoiser = pipe.transformer
        self.vae = pipe.vae.to(device, dtype=dtype).requires_grad_(False)
        self.clip = pipe.text_encoder.to(device, dtype=dtype).requires_grad_(False)
        self.t5 = pipe.text_encoder_2.to(device, dtype=dtype).requires_grad_(False)
        self.tokenizers = (pipe.tokenizer, pipe.tokenizer_2)

    def tokenize(self, captions: list[str]) -> dict[str, torch.Tensor]:
        clip_tok, t5_tok = self.tokenizers
        common: dict[str, Any] = {"padding": "max_length", "truncation": True, "return_tensors": "pt"}
        return {
            "clip_ids": clip_tok(captions, max_length=clip_tok.model_max_length, **common).input_ids,
            "t5_ids": t5_tok(captions, max_length=FLUX_MAX_SEQUENCE_LENGTH, **common).input_ids,
        }

    def image_extras(self, images: list[PreparedImage]) -> dict[str, torch.Tensor]:
        return {}

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        latents: torch.Tensor = self.vae.encode(pixels).latent_dist.sample()
        return (latents - float(self.vae.config.shift_factor)) * float(self.vae.config.scaling_factor)

    def encode_text(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pooled = self.clip(ids["clip_ids"], output_hidden_states=False).pooler_output
        embeds = self.t5(ids["t5_ids"], output_hidden_states=False)[0]
        return {"pooled_projections": pooled.to(self.dtype), "encoder_hidden_states": embeds.to(self.dtype)}

    def loss(
        self, denoiser: Any, latents: torch.Tensor, cond: dict[str, torch.Tensor], extras: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        device, dtype = latents.device, latents.dtype
        bsz, channels, height, width = latents.shape
        image_ids = self.pipeline_cls._prepare_latent_image_ids(bsz, height // 2, width // 2, device, dtype)
        noise = torch.randn_like(latents)
        indices = (torch.rand(bsz) * self.num_train_timesteps).long().clamp(max=self.num_train_timesteps - 1)
        timesteps = self.timesteps[indices].to(device)
        sigmas = self.sigmas[indices].to(device, dtype).view(bsz, 1, 1, 1)
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        packed = self.pipeline_cls._pack_latents(noisy, bsz, channels, height, width)
        guidance = None
        if getattr(denoiser.config, "guidance_embeds", False):
            guidance = torch.full((bsz,), self.guidance_scale, device=device, dtype=torch.float32)
        embeds = cond["encoder_hidden_states"]
        text_ids = torch.zeros(embeds.shape[1], 3, device=device, dtype=dtype)
        pred = denoiser(
            hidden_states=packed,
            timestep=timesteps / 1000,
            guidance=guidance,
            pooled_projections=cond["pooled_projections"],
            encoder_hidden_states=embeds,
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
        return F.mse_loss(pred.float(), (noise - latents).float(), reduction="mean")
