"""Recipe names to recipe functions; the API and job runner look recipes up here (no torch at import)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genfoundry.training.config import DreamBoothTrainingConfig, LoraTrainingConfig
from genfoundry.training.dreambooth import train_dreambooth
from genfoundry.training.lora import train_lora
from genfoundry.training.sft import train_sft

# Each recipe: (config, dataset_dir, output_dir, callbacks, *, resume_from=None) -> TrainingResult;
# dreambooth also takes class_cache_dir= (where generated class images are cached across runs).
RECIPES: dict[str, Callable[..., Any]] = {
    "lora": train_lora,
    "dreambooth": train_dreambooth,
    "sft": train_sft,  # (config, dataset_path, output_dir, callbacks, *, resume_from=None, validation_path=None)
}
# The config class of each recipe: from_params(family, base_source, params) checks its hyperparameters.
CONFIGS: dict[str, type[LoraTrainingConfig]] = {
    "lora": LoraTrainingConfig,
    "dreambooth": DreamBoothTrainingConfig,
}


def get_recipe(name: str) -> Callable[..., Any]:
    """The recipe called `name`; Invalid naming the known ones otherwise."""
    from genfoundry.errors import Invalid

    try:
        return RECIPES[name]
    except KeyError:
        raise Invalid(
            f"unknown training method {name!r}; known: {', '.join(sorted(RECIPES))}", param="method"
        ) from None
