"""Rebuild the shipped prompt-router head from the training split alone, deterministically.

    .venv/bin/python scripts/build_router.py            # writes src/genfoundry/data/router/head.{safetensors,json}
    .venv/bin/python scripts/build_router.py --check    # rebuilds in a temp dir; exit 1 unless byte-identical

The head is a logistic regression on the embeddings of all-MiniLM-L6-v2 with a SetFit-style contrastive LoRA
(trained on the training part of a seeded validation split cut from train.jsonl); the regularisation strength
and the ambiguity margin are chosen on that validation split. heldout.jsonl is never read here. Torch runs on one
thread, so the floating-point sums, and so the bytes, do not depend on the machine's core count.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
import time
from pathlib import Path

from genfoundry.router.head import HEAD_META, HEAD_WEIGHTS, default_head_dir
from genfoundry.router.train import LORA_FILE, ClassifierTrainingConfig, train_classifier
from genfoundry.training.callbacks import TrainingCallbacks


def build(data: Path, out: Path, *, seed: int, frozen: bool = False) -> dict[str, float]:
    """Train on `data` and write the head files into `out`; returns the validation measurements."""
    import torch

    torch.set_num_threads(1)
    config = ClassifierTrainingConfig(seed=seed, encoder_tuning="frozen" if frozen else "contrastive_lora")
    with tempfile.TemporaryDirectory() as tmp:
        result = train_classifier(
            config,
            data,
            Path(tmp),
            TrainingCallbacks(on_step=show_progress, on_log=lambda message: print(message, file=sys.stderr)),
            meta={"data": data.name, "built_by": "scripts/build_router.py"},
        )
        out.mkdir(parents=True, exist_ok=True)
        for name in head_files(Path(tmp)):
            shutil.copyfile(Path(tmp) / name, out / name)
        stale = out / LORA_FILE
        if frozen and stale.exists():
            stale.unlink()
    return dict(result.validation)


def show_progress(step: int, total: int, metrics: dict[str, float]) -> None:
    if metrics and ("contrastive_loss" not in metrics or step % 25 == 0):
        shown = ", ".join(f"{key} {value:.4g}" for key, value in metrics.items())
        print(f"step {step}/{total}: {shown}", file=sys.stderr)


def head_files(directory: Path) -> list[str]:
    return [name for name in (HEAD_WEIGHTS, HEAD_META, LORA_FILE) if (directory / name).exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_head_dir() / "train.jsonl")
    parser.add_argument("--out", type=Path, default=default_head_dir())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="rebuild elsewhere and compare with --out")
    parser.add_argument("--frozen", action="store_true", help="no contrastive LoRA: a head on the frozen encoder")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(args.data, Path(tmp), seed=args.seed, frozen=args.frozen)
            names = head_files(Path(tmp))
            same = [names == head_files(args.out)]
            same += [filecmp.cmp(Path(tmp) / name, args.out / name, shallow=False) for name in names]
        print(f"rebuilt in {time.perf_counter() - start:.1f} s: {'identical' if all(same) else 'DIFFERENT'}")
        return 0 if all(same) else 1
    validation = build(args.data, args.out, seed=args.seed, frozen=args.frozen)
    seconds = time.perf_counter() - start
    print(f"wrote {args.out / HEAD_WEIGHTS} and {HEAD_META} in {seconds:.1f} s; validation {validation}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
