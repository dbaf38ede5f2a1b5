"""mini-captioner: a small Florence-2 trained to caption the synthetic scenes, in transformers layout."""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

from mini_training.common import State, export_staged, loss_table

GOAL = 0.8  # held-out images whose caption names the right colour, shape and background
_WARMUP = 200


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=6000, help="stop after this many optimizer steps in all")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=1000, help="log held-out accuracy (greedy) this often")


def _labels(tokenizer: Any, texts: list[str]) -> Any:
    """Caption tokens then </s>, padding masked out; the decoder starts from </s> as Florence-2's does."""
    import torch

    rows = [[*tokenizer(text, add_special_tokens=False).input_ids, tokenizer.eos_token_id] for text in texts]
    labels = torch.full((len(rows), max(map(len, rows))), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        labels[i, : len(row)] = torch.tensor(row)
    return labels


def _quick_accuracy(model: Any, processor: Any) -> float:
    """Held-out accuracy from a greedy generate straight on the model (the export measures through the engine)."""
    import torch

    from genfoundry.models import mini_captioner

    scenes, images = mini_captioner.held_out_images()
    model.eval()
    with torch.inference_mode():
        inputs = processor(images=images, text=[mini_captioner.TASK] * len(images), return_tensors="pt")
        generated = model.generate(**inputs, max_new_tokens=16, num_beams=1, do_sample=False)
    model.train()
    captions = processor.batch_decode(generated, skip_special_tokens=True)
    return sum(mini_captioner.caption_is_right(c, s) for c, s in zip(captions, scenes, strict=True)) / len(scenes)


def train(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from genfoundry.models import mini_captioner, mini_scenes

    torch.set_num_threads(args.threads)
    model, processor = mini_captioner.build_untrained(args.seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-2)
    rng = random.Random(args.seed)
    state = State(args.work_dir)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    step, seconds = 0, 0.0
    if (saved := state.load()) is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        step, seconds = saved["step"], saved["seconds"]
        print(f"resumed at step {step} ({seconds / 60:.1f} min trained)", flush=True)
    else:
        torch.manual_seed(args.seed)
    triples = mini_scenes.training_triples()
    started = time.monotonic()
    losses: list[float] = []

    def checkpoint(accuracy: float | None = None) -> None:
        state.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "seconds": seconds + time.monotonic() - started,
            }
        )
        if losses or accuracy is not None:
            row: dict[str, Any] = {"step": step, "loss": sum(losses) / len(losses) if losses else math.nan}
            if accuracy is not None:
                row["held_out_accuracy"] = accuracy
            with state.log_path.open("a") as log:
                log.write(json.dumps(row) + "\n")
            losses.clear()

    while step < args.steps:
        if args.minutes is not None and time.monotonic() - started > args.minutes * 60:
            break
        scenes = [mini_scenes.random_scene(rng, triples) for _ in range(args.batch_size)]
        images = [mini_scenes.render(scene, rng) for scene in scenes]
        inputs = processor(images=images, text=[mini_captioner.TASK] * len(images), return_tensors="pt")
        labels = _labels(processor.tokenizer, [mini_captioner.target_caption(scene) for scene in scenes])
        loss = model(**inputs, labels=labels).loss
        # Linear warm-up, then a cosine decay to a tenth over --steps.
        progress = min(1.0, step / args.steps)
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = args.learning_rate * min(1.0, (step + 1) / _WARMUP) * decay
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        losses.append(loss.item())
        if step % 50 == 0:
            elapsed = seconds + time.monotonic() - started
            print(f"step {step}  loss {sum(losses[-50:]) / len(losses[-50:]):.4f}  {elapsed / 60:.1f} min", flush=True)
        if step % args.eval_every == 0:
            accuracy = _quick_accuracy(model, processor)
            print(f"step {step}  held-out accuracy {accuracy:.0%}", flush=True)
            checkpoint(accuracy)
        elif step % args.save_every == 0:
            checkpoint()
    checkpoint()
    model.eval()
    return {
        "model": model,
        "processor": processor,
        "step": step,
        "minutes": (seconds + time.monotonic() - started) / 60,
    }


def measure(folder: Path) -> dict[str, Any]:
    """Held-out accuracy of the captioner in `folder` through the captioning engine (bench/bench_mini.py's measure)."""
    from genfoundry.inference.caption import Captioner
    from genfoundry.models import mini_captioner

    return mini_captioner.held_out_accuracy(Captioner(mini_captioner.spec(folder)))


def export(result: dict[str, Any], out: Path, args: argparse.Namespace) -> None:
    def save(folder: Path) -> None:
        result["model"].save_pretrained(folder, safe_serialization=True)
        result["processor"].save_pretrained(folder)

    export_staged(out, save, measure, lambda measured: _card(result, measured, args))


def _card(result: dict[str, Any], measured: dict[str, Any], args: argparse.Namespace) -> str:
    from genfoundry.models import mini_captioner, mini_scenes

    model = result["model"]
    vision = sum(p.numel() for p in model.model.vision_tower.parameters())
    total = sum(p.numel() for p in model.parameters())
    sizes = mini_captioner.SIZES
    wrong = "\n".join(f"| {scene} | {caption} |" for scene, caption in measured["wrong"]) or "| (none) | |"
    log = [json.loads(line) for line in (args.work_dir / "loss.jsonl").read_text().splitlines() if line.strip()]
    during = ", ".join(f"{r['held_out_accuracy']:.0%} at {r['step']}" for r in log if "held_out_accuracy" in r)
    shapes = ", ".join(mini_scenes.SHAPES)
    triples = (len(mini_scenes.training_triples()), len(mini_scenes.all_triples()), mini_scenes.HELD_OUT_COUNT)
    return f"""# mini-captioner

A small Florence-2 (transformers' Florence2ForConditionalGeneration + Florence2Processor: a DaViT vision tower and a
BART encoder-decoder), trained by genfoundry's own script to caption the synthetic 64×64 scenes of
`docs/mini-models.md`, so that an offline captioning job writes what the image shows. Task prompt:
`{mini_captioner.TASK}` (its `default_prompt`).

- **Data**: one shape ({shapes}) in one of {len(mini_scenes.PALETTE)} colours on a background of another,
  rendered on the fly (seeded) with random size, rotation and place (a named position half the time);
  {triples[0]} of the {triples[1]} (colour, shape, background) triples are trained (the split mini-sd15 uses), the
  other {triples[2]} are held out for measuring.
- **Target text**: colour, shape and background (`a red circle on a blue background`), **no position**: the
  shape's place varies continuously, and a caption naming the nearest of five positions would teach ambiguous labels.
- **Model**: {total / 1e6:.2f} M parameters: DaViT with {len(sizes.depths)} stages (widths
  {", ".join(map(str, sizes.embed_dim))}; {vision / 1e6:.2f} M) on {sizes.image_size} px images (8×8 image
  tokens), BART with {sizes.layers} encoder and {sizes.layers} decoder layers of width {sizes.d_model}; a
  byte-level BPE learned from the scene captions (every vocabulary word is one token).
- **Training**: {result["step"]} steps of batch {args.batch_size}, AdamW lr {args.learning_rate} (warm-up, then
  cosine to a tenth), seed {args.seed}, {result["minutes"]:.0f} minutes on a 2-core CPU ({args.threads} torch
  thread; other work on the machine).
- **Command**: `python scripts/train_mini_models.py captioner --steps {args.steps}` (resumable: the same command
  continues a stopped run; `--check` re-measures the shipped weights).

## Loss (mean token cross-entropy over each logged span)

| step | loss |
|---|---|
{loss_table(args.work_dir / "loss.jsonl")}

## Held-out accuracy

The {measured["images"]} held-out scenes (a varied render of each), captioned through genfoundry's captioning
engine (`genfoundry.inference.caption.Captioner`, greedy, the default prompt); a caption is right when it names the
scene's shape colour, shape and background.

| measure | measured | goal |
|---|---|---|
| right captions | {measured["accuracy"]:.0%} | ≥ {GOAL:.0%} |

During training (greedy `generate` on the model itself): {during or "not logged"}.

Wrong ones (at most eight; the scene's position is drawn but not asked for):

| scene | caption |
|---|---|
{wrong}
"""


def check(out: Path) -> int:
    """Measure the exported weights against GOAL; 1 when below."""
    measured = measure(out)
    print(json.dumps(measured))
    print("goal met" if measured["accuracy"] >= GOAL else f"below goal ({GOAL:.0%})")
    return 0 if measured["accuracy"] >= GOAL else 1
