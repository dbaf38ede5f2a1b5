"""What every mini model's training shares: the resumable state file, the staged export and the loss table of a card."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def loss_table(log_path: Path) -> str:
    """Markdown rows `| step | loss |` from the loss log, about a dozen of them, the last always included."""
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    every = max(1, len(rows) // 12)
    picked = rows[::every] + ([rows[-1]] if rows and rows[-1] is not rows[::every][-1] else [])
    return "\n".join(f"| {r['step']} | {r['loss']:.4f} |" for r in picked)


def export_staged(
    out: Path,
    save: Callable[[Path], None],
    measure: Callable[[Path], dict[str, Any]],
    card: Callable[[dict[str, Any]], str],
) -> None:
    """Save into a staging folder, measure what was saved, write its MODEL_CARD.md, then put it at `out` (replacing
    what was there), so a failed run never leaves a half-written model where the package looks."""
    staging = out.with_name(f".staging-{out.name}")
    shutil.rmtree(staging, ignore_errors=True)
    save(staging)
    measured = measure(staging)
    (staging / "MODEL_CARD.md").write_text(card(measured))
    shutil.rmtree(out, ignore_errors=True)
    staging.replace(out)
    print(json.dumps(measured), flush=True)
