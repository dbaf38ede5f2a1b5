"""Base-model and style catalogs (TOML), plus the tiny-model registry written by `models build-tiny`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from genfoundry.errors import Invalid, NotFound

FAMILIES = ("sd15", "sdxl", "flux")
TINY_REGISTRY_FILE = "registry.toml"


@dataclass(frozen=True)
class GenerationDefaults:
    width: int = 512
    height: int = 512
    steps: int = 30
    guidance_scale: float = 7.5
    scheduler: str | None = None  # a diffusers scheduler class name; None keeps the model's own


@dataclass(frozen=True)
class BaseModelEntry:
    """A base model: where its weights come from and how it generates by default."""

    id: str
    family: str
    source: str
    dtype: str = "auto"
    description: str = ""
    defaults: GenerationDefaults = field(default_factory=GenerationDefaults)


@dataclass(frozen=True)
class Style:
    name: str
    prompt: str
    negative_prompt: str = ""

    def apply(self, prompt: str, negative_prompt: str | None) -> tuple[str, str | None]:
        styled = self.prompt.replace("{prompt}", prompt)
        negatives = ", ".join(part for part in (negative_prompt, self.negative_prompt) if part)
        return styled, negatives or None


def _read_toml(path: Path | None, packaged: str) -> dict[str, Any]:
    if path is not None:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    text = resources.files("genfoundry.data").joinpath(packaged).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _entry(model_id: str, raw: dict[str, Any], *, relative_to: Path | None = None) -> BaseModelEntry:
    family = raw.get("family")
    if family not in FAMILIES:
        raise Invalid(f"catalog model {model_id!r}: family must be one of {FAMILIES}, got {family!r}")
    source = str(raw["source"])
    if relative_to is not None and not Path(source).is_absolute():
        source = str(relative_to / source)
    return BaseModelEntry(
        id=model_id,
        family=family,
        source=source,
        dtype=str(raw.get("dtype", "auto")),
        description=str(raw.get("description", "")),
        defaults=GenerationDefaults(**raw.get("defaults", {})),
    )


class Catalog:
    """Base models (shipped TOML or the settings' file, plus tiny models in the home) and styles."""

    def __init__(self, *, catalog_file: Path | None, styles_file: Path | None, tiny_dir: Path) -> None:
        self._catalog_file = catalog_file
        self._tiny_dir = tiny_dir
        self.styles = {
            name: Style(name=name, prompt=raw["prompt"], negative_prompt=raw.get("negative_prompt", ""))
            for name, raw in _read_toml(styles_file, "styles.toml").get("styles", {}).items()
        }
        self.reload()

    def reload(self) -> None:
        """Re-read the catalog; called after `build-tiny` registers new models."""
        raw = _read_toml(self._catalog_file, "catalog.toml").get("models", {})
        models = {model_id: _entry(model_id, entry) for model_id, entry in raw.items()}
        registry = self._tiny_dir / TINY_REGISTRY_FILE
        if registry.exists():
            with registry.open("rb") as handle:
                tiny = tomllib.load(handle).get("models", {})
            for model_id, entry in tiny.items():
                models[model_id] = _entry(model_id, entry, relative_to=self._tiny_dir)
        self.models = models

    def get(self, model_id: str) -> BaseModelEntry:
        try:
            return self.models[model_id]
        except KeyError:
            raise NotFound(f"The model '{model_id}' does not exist", param="model") from None

    def style(self, name: str) -> Style:
        try:
            return self.styles[name]
        except KeyError:
            known = ", ".join(sorted(self.styles))
            raise Invalid(f"unknown style {name!r}; known styles: {known}", param="style") from None
