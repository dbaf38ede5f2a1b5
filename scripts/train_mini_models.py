"""Pretrain the mini models on the synthetic scenes (genfoundry.models.mini_scenes) and write them into the package.

    python scripts/train_mini_models.py sd15 --minutes 100          # train (resumes from --work-dir), export, card
    python scripts/train_mini_models.py sd15 --check                # measure the shipped weights' prompt adherence

Seeded and resumable: the state (weights, EMA, optimizer, step, RNG, loss log) is saved to --work-dir every
--save-every steps and at the end; running the command again continues from there. The exported pipeline (the EMA
weights, diffusers layout, safetensors) goes to src/genfoundry/data/mini/<model>/ with a MODEL_CARD.md holding the
data, steps, loss curve, time, this command and the measured adherence. `--check` rebuilds nothing: it measures the
shipped (or --out) weights and fails when adherence is below the card's goals, comparing quality, not bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "src" / "genfoundry" / "data" / "mini"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["sd15"])
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".mini-training")
    parser.add_argument("--out", type=Path, default=None, help="export folder (default: the package's data/mini)")
    parser.add_argument("--steps", type=int, default=20000, help="stop after this many optimizer steps in all")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of this run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core CPU)")
    parser.add_argument("--check", action="store_true", help="only measure the exported weights' adherence")
    parser.add_argument("--no-export", action="store_true", help="train and save state, do not export")
    return parser.parse_args()


class State:
    """What a resume needs, saved with torch.save next to a JSON loss log."""

    def __init__(self, work_dir: Path) -> None:
        self.path = work_dir / "state.pt"
        self.log_path = work_dir / "loss.jsonl"

    def save(self, payload: dict[str, Any]) -> None:
        import torch

        tmp = self.path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(self.path)

    def load(self) -> dict[str, Any] | None:
        import torch

        return torch.load(self.path, weights_only=False) if self.path.exists() else None


def train_sd15(args: argparse.Namespace) -> dict[str, Any]:
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


def measure_sd15(folder: Path, *, seeds: int = 1, steps: int = 20, guidance: float = 4.0) -> dict[str, Any]:
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


def export_sd15(result: dict[str, Any], out: Path, args: argparse.Namespace) -> None:
    staging = out.with_name(f".staging-{out.name}")
    shutil.rmtree(staging, ignore_errors=True)
    result["pipe"].save_pretrained(staging, safe_serialization=True)
    adherence = measure_sd15(staging)
    (staging / "MODEL_CARD.md").write_text(_card(result, adherence, args))
    shutil.rmtree(out, ignore_errors=True)
    staging.replace(out)
    print(json.dumps(adherence), flush=True)


def _loss_table(log_path: Path) -> str:
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    every = max(1, len(rows) // 12)
    picked = rows[::every] + ([rows[-1]] if rows and rows[-1] is not rows[::every][-1] else [])
    return "\n".join(f"| {r['step']} | {r['loss']:.4f} |" for r in picked)


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
{_loss_table(args.work_dir / "loss.jsonl")}

## Prompt adherence on the {adherence["images"]} held-out prompts (20 steps, guidance 4.0)

Read back by `genfoundry.models.mini_scenes.read_image` (nearest palette colour of the border and of the largest
other colour; shape from the foreground's fill of its bounding box and convex hull).

| measure | measured | goal |
|---|---|---|
{goal_lines}
"""


def main() -> int:
    args = _arguments()
    out = args.out or DATA_DIR / args.model
    if args.check:
        adherence = measure_sd15(out)
        print(json.dumps(adherence))
        failed = [name for name, goal in GOALS.items() if adherence[name] < goal]
        print("below goal: " + ", ".join(failed) if failed else "all goals met")
        return 1 if failed else 0
    result = train_sd15(args)
    print(f"trained {result['step']} steps, {result['minutes']:.1f} min", flush=True)
    if not args.no_export:
        export_sd15(result, out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
