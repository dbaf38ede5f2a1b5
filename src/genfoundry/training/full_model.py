"""A full fine-tune's output: a diffusers pipeline folder whose denoiser is the trained one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.training import checkpoints

if TYPE_CHECKING:
    import torch

    from genfoundry.training.config import LoraTrainingConfig

MODEL_DIR = "model"
MODEL_INDEX = "model_index.json"


def write_full_model(
    output_dir: Path,
    config: LoraTrainingConfig,
    *,
    component: str,
    denoiser: Any,
    dtype: torch.dtype,
    info: dict[str, Any],
) -> Path:
    """Publish `output_dir/model/` atomically: loadable with DiffusionPipeline.from_pretrained.

    From a local base folder the other components are symlinked (copied where links fail), so a model
    costs the denoiser's size only and depends on the base folder staying where it is; from a Hub id the
    base pipeline is loaded around the trained denoiser and saved whole.
    """
    local = Path(config.base_source).expanduser()

    def write(folder: Path) -> None:
        if local.is_dir() and (local / MODEL_INDEX).is_file():
            link_base_components(local.resolve(), folder, skip=component)
            checkpoints.save_denoiser(folder / component, denoiser)
        else:
            save_pipeline_with(config, dtype, folder, **{component: denoiser})
        (folder / "training.json").write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")

    return checkpoints.write_dir_atomically(Path(output_dir) / MODEL_DIR, write)


def link_base_components(base: Path, folder: Path, *, skip: str) -> None:
    """Copy the base's model_index.json and link every component folder it lists except `skip`."""
    index = json.loads((base / MODEL_INDEX).read_text(encoding="utf-8"))
    for name, spec in index.items():
        if name.startswith("_") or name == skip or not isinstance(spec, list) or spec[0] is None:
            continue
        source = base / name
        if not source.is_dir():
            continue
        try:
            (folder / name).symlink_to(source, target_is_directory=True)
        except OSError:  # no symlinks on this filesystem (or platform): pay with a copy
            shutil.copytree(source, folder / name)
    shutil.copyfile(base / MODEL_INDEX, folder / MODEL_INDEX)


def save_pipeline_with(config: LoraTrainingConfig, dtype: torch.dtype, folder: Path, **components: Any) -> None:
    """Load the base pipeline with `components` replacing its own and save it whole into `folder`."""
    from genfoundry.training.lora_setup import load_base_pipeline

    pipe = load_base_pipeline(config, dtype, **components)
    pipe.save_pretrained(folder)
