"""mini-sd15: a small SD 1.5 pipeline trained on the synthetic scenes (v-prediction, EMA), in diffusers layout."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from mini_training.common import State, export_staged, loss_table


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=20000, help="stop after this many optimizer steps in all")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--save-every", type=int, default=200)


def train(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    from genfoundry.models import mini_scenes, mini_sd15

    torch.set_num_threads(args.threads)
    pipe = mini_sd15.build_untrained(args.seed)
    unet, text_encoder, vae, tokenizer = pipe.unet, pipe.text_encoder, pipe.vae, pipe.tokenizer
    vae.requires_grad_(False)
    params = [*unet.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=1e-2)
    ema = EMAModel(params, decay=0.9995, use_ema_warmup=True, power=0.75)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    rng = random.Random(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    state = State(args.work_dir)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    step, seconds = 0, 0.0
    if (saved := state.load()) is not None:
        unet.load_state_dict(saved["unet"])
        text_encoder.load_state_dict(saved["text_encoder"])
        optimizer.load_state_dict(saved["optimizer"])
        ema.load_state_dict(saved["ema"])
        rng.setstate(saved["rng"])
        generator.set_state(saved["generator"])
        step, seconds = saved["step"], saved["seconds"]
        print(f"resumed at step {step} ({seconds / 60:.1f} min trained)", flush=True)
    triples = mini_scenes.training_triples()
    started = time.monotonic()
    losses: list[float] = []

    def checkpoint() -> None:
        state.save(
            {
                "unet": unet.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": ema.state_dict(),
                "rng": rng.getstate(),
                "generator": generator.get_state(),
                "step": step,
                "seconds": seconds + time.monotonic() - started,
            }
        )
        if losses:
            with state.log_path.open("a") as log:
                log.write(json.dumps({"step": step, "loss": sum(losses) / len(losses)}) + "\n")
            losses.clear()

    warmup = 200
    while step < args.steps:
        if args.minutes is not None and time.monotonic() - started > args.minutes * 60:
            break
        scenes = [mini_scenes.random_scene(rng, triples) for _ in range(args.batch_size)]
        captions = [s.caption if rng.random() > 0.1 else "" for s in scenes]  # 10% unconditional, for CFG
        pixels = torch.stack([torch.from_numpy(_to_array(mini_scenes.render(s, rng))) for s in scenes]).permute(
            0, 3, 1, 2
        )
        with torch.no_grad():
            latents = vae.encode(pixels * 2 - 1).latent_dist.mean * vae.config.scaling_factor
        ids = tokenizer(
            captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(scenes),), generator=generator)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
        prediction = unet(noisy, timesteps, text_encoder(ids)[0]).sample
        loss = torch.nn.functional.mse_loss(prediction, target)
        for group in optimizer.param_groups:
            group["lr"] = args.learning_rate * min(1.0, (step + 1) / warmup)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.step(params)
        step += 1
        losses.append(loss.item())
        if step % 20 == 0:
            elapsed = seconds + time.monotonic() - started
            print(f"step {step}  loss {sum(losses[-20:]) / 20:.4f}  {elapsed / 60:.1f} min", flush=True)
        if step % args.save_every == 0:
            checkpoint()
    checkpoint()
    ema.copy_to(params)
    return {"pipe": pipe, "step": step, "minutes": (seconds + time.monotonic() - started) / 60}


def _to_array(image: Any) -> Any:
    import numpy as np

    return np.asarray(image, dtype=np.float32) / 255.0


def measure(folder: Path, *, seeds: int = 1, steps: int = 20, guidance: float = 4.0) -> dict[str, Any]:
    """Prompt adherence on the 64 held-out scenes, `seeds` images each (the same measure bench/bench_mini.py prints)."""
    import torch
    from diffusers import StableDiffusionPipeline

    from genfoundry.models import mini_scenes

    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    scenes = mini_scenes.held_out_scenes() * seeds
    images = []
    for start in range(0, len(scenes), 16):
        chunk = scenes[start : start + 16]
        images += pipe(
            [s.caption for s in chunk],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=[torch.Generator().manual_seed(start + i) for i in range(len(chunk))],
        ).images
    rates = mini_scenes.adherence(images, scenes)
    return {name: round(rate, 3) for name, rate in rates.items()} | {"images": len(scenes)}


GOALS = {"colour": 0.8, "background": 0.8, "shape": 0.6}


def export(result: dict[str, Any], out: Path, args: argparse.Namespace) -> None:
    def save(folder: Path) -> None:
        result["pipe"].save_pretrained(folder, safe_serialization=True)

    export_staged(out, save, measure, lambda adherence: _card(result, adherence, args))


def _card(result: dict[str, Any], adherence: dict[str, Any], args: argparse.Namespace) -> str:
    from genfoundry.models import mini_scenes

    goal_lines = "\n".join(f"| {name} | {adherence[name]:.0%} | ≥ {goal:.0%} |" for name, goal in GOALS.items())
    return f"""# mini-sd15

A small Stable Diffusion 1.5 pipeline (diffusers layout: UNet2DConditionModel, CLIPTextModel + CLIPTokenizer,
AutoencoderKL, EulerDiscreteScheduler), pretrained by genfoundry's own script on synthetic 64×64 scenes so that
offline generations follow prompts. Vocabulary and caption grammar: `docs/mini-models.md`.

- **Data**: one {", ".join(mini_scenes.SHAPES)} in one of {len(mini_scenes.PALETTE)} colours on a background of
  another, optionally at a named position, rendered on the fly (seeded); {len(mini_scenes.training_triples())} of the
  {len(mini_scenes.all_triples())} (colour, shape, background) triples are trained, the other
  {mini_scenes.HELD_OUT_COUNT} are held out for measuring. 10% of captions dropped (classifier-free guidance).
- **Model**: UNet {sum(p.numel() for p in result["pipe"].unet.parameters()) / 1e6:.2f} M parameters on 32×32
  latents; text encoder {sum(p.numel() for p in result["pipe"].text_encoder.parameters()) / 1e6:.2f} M (trained
  jointly); the VAE is the colour-preserving one built by `genfoundry.models.colour_vae` (factor 2, not trained).
  v-prediction on a zero-terminal-SNR schedule, EMA weights exported.
- **Training**: {result["step"]} steps of batch {args.batch_size}, AdamW lr {args.learning_rate}, seed {args.seed},
  {result["minutes"]:.0f} minutes on a 2-core CPU ({args.threads} torch thread(s); other work on the machine).
- **Command**: `python scripts/train_mini_models.py sd15 --steps {result["step"]}` (resumable: the same command
  continues a stopped run; `--check` re-measures the shipped weights).

## Loss (mean v-prediction MSE over each logged span)

| step | loss |
|---|---|
{loss_table(args.work_dir / "loss.jsonl")}

## Prompt adherence on the {adherence["images"]} held-out prompts (20 steps, guidance 4.0)

Read back by `genfoundry.models.mini_scenes.read_image` (nearest palette colour of the border and of the largest
other colour; shape from the foreground's fill of its bounding box and convex hull).

| measure | measured | goal |
|---|---|---|
{goal_lines}
"""


def check(out: Path) -> int:
    """Measure the exported weights against GOALS; 1 when any is below."""
    adherence = measure(out)
    print(json.dumps(adherence))
    failed = [name for name, goal in GOALS.items() if adherence[name] < goal]
    print("below goal: " + ", ".join(failed) if failed else "all goals met")
    return 1 if failed else 0
