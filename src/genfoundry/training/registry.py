"""Recipe names to recipe functions; the API and job runner look recipes up here (no torch at import)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genfoundry.training.lora import train_lora

# Each recipe: (config, dataset_dir, output_dir, callbacks, *, resume_from=None) -> TrainingResult.
RECIPES: dict[str, Callable[..., Any]] = {
    "lora": train_lora,
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
