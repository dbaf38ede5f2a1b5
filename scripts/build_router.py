"""Rebuild the shipped prompt-router head from the training split alone, deterministically.

    .venv/bin/python scripts/build_router.py            # writes src/genfoundry/data/router/head.{safetensors,json}
    .venv/bin/python scripts/build_router.py --check    # rebuilds in a temp dir; exit 1 unless byte-identical

The regularisation strength and the ambiguity margin are chosen on a validation split cut from train.jsonl
(seeded); heldout.jsonl is never read here. Same data, same bytes.
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
from genfoundry.router.train import ClassifierTrainingConfig, train_classifier
from genfoundry.training.callbacks import TrainingCallbacks


def build(data: Path, out: Path, *, seed: int) -> dict[str, float]:
    """Train on `data` and write the head files into `out`; returns the validation measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        result = train_classifier(
            ClassifierTrainingConfig(seed=seed),
            data,
            Path(tmp),
            TrainingCallbacks(on_log=lambda message: print(message, file=sys.stderr)),
            meta={"data": data.name, "built_by": "scripts/build_router.py"},
        )
        out.mkdir(parents=True, exist_ok=True)
        for name in (HEAD_WEIGHTS, HEAD_META):
            shutil.copyfile(Path(tmp) / name, out / name)
    return dict(result.validation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_head_dir() / "train.jsonl")
    parser.add_argument("--out", type=Path, default=default_head_dir())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="rebuild elsewhere and compare with --out")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(args.data, Path(tmp), seed=args.seed)
            same = [filecmp.cmp(Path(tmp) / name, args.out / name, shallow=False) for name in (HEAD_WEIGHTS, HEAD_META)]
        print(f"rebuilt in {time.perf_counter() - start:.1f} s: {'identical' if all(same) else 'DIFFERENT'}")
        return 0 if all(same) else 1
    validation = build(args.data, args.out, seed=args.seed)
    seconds = time.perf_counter() - start
    print(f"wrote {args.out / HEAD_WEIGHTS} and {HEAD_META} in {seconds:.1f} s; validation {validation}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
