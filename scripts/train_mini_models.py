"""Pretrain the mini models on data the project generates and write them into the package.

    python scripts/train_mini_models.py sd15 --minutes 100          # train (resumes from --work-dir), export, card
    python scripts/train_mini_models.py sd15 --check                # measure the shipped weights against the goals

One module per model in scripts/mini_training/ (`configure`, `train`, `export`, `check`). Seeded and resumable:
the state (weights, optimizer, step, RNG, loss log) is saved under --work-dir (default .mini-training/<model>/) as
training goes; running the command again continues from there. The export goes to src/genfoundry/data/mini/<model>/
with a MODEL_CARD.md holding the data, steps, loss curve, time, the command and the measured quality. `--check`
rebuilds nothing: it measures the shipped (or --out) weights and fails below the card's goals, comparing quality,
not bytes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "src" / "genfoundry" / "data" / "mini"
MODULES_DIR = Path(__file__).resolve().parent / "mini_training"


def _models() -> dict[str, ModuleType]:
    names = sorted(p.stem for p in MODULES_DIR.glob("*.py") if not p.stem.startswith("_") and p.stem != "common")
    return {name: importlib.import_module(f"mini_training.{name}") for name in names}


def _arguments(models: dict[str, ModuleType]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--work-dir", type=Path, default=None, help="training state (default .mini-training/<model>)")
    shared.add_argument("--out", type=Path, default=None, help="export folder (default: the package's data/mini)")
    shared.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of this run")
    shared.add_argument("--seed", type=int, default=0)
    shared.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core CPU)")
    shared.add_argument("--check", action="store_true", help="only measure the exported weights against the goals")
    shared.add_argument("--no-export", action="store_true", help="train and save state, do not export")
    commands = parser.add_subparsers(dest="model", required=True)
    for name, module in models.items():
        module.configure(commands.add_parser(name, parents=[shared], help=(module.__doc__ or "").splitlines()[0]))
    args = parser.parse_args()
    args.work_dir = args.work_dir or ROOT / ".mini-training" / args.model
    return args


def main() -> int:
    models = _models()
    args = _arguments(models)
    module = models[args.model]
    out = args.out or DATA_DIR / args.model
    if args.check:
        return int(module.check(out))
    result = module.train(args)
    print(f"trained {result['step']} steps, {result['minutes']:.1f} min", flush=True)
    if not args.no_export:
        module.export(result, out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
