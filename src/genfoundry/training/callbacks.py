"""How a recipe reports to its caller (the job runner, a test): callbacks in, a result out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def _ignore_step(step: int, total: int, metrics: dict[str, float]) -> None:
    return None


def _ignore_path(step: int, path: Path) -> None:
    return None


def _ignore_sample(step: int, prompt: str, image_path: Path) -> None:
    return None


def _never() -> bool:
    return False


def _ignore_message(message: str) -> None:
    return None


@dataclass
class TrainingCallbacks:
    """Hooks a recipe calls; every one is optional. `should_stop` is polled at each step boundary."""

    # metrics: loss, lr, it_per_s; DreamBooth with prior preservation adds instance_loss and prior_loss.
    on_step: Callable[[int, int, dict[str, float]], None] = _ignore_step
    on_checkpoint: Callable[[int, Path], None] = _ignore_path
    on_sample: Callable[[int, str, Path], None] = _ignore_sample
    should_stop: Callable[[], bool] = _never
    on_log: Callable[[str], None] = _ignore_message


@dataclass
class TrainingResult:
    """What a run left behind: the adapter or the full model (None when stopped early), checkpoints, samples
    and its losses."""

    adapter_path: Path | None
    step: int
    total_steps: int
    stopped: bool
    last_checkpoint: Path | None
    losses: list[float] = field(default_factory=list)  # one per optimizer step run in this call
    samples: list[Path] = field(default_factory=list)
    model_path: Path | None = None  # a full fine-tune: a diffusers pipeline folder (DiffusionPipeline.from_pretrained)
