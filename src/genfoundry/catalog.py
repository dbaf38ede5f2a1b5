"""Base-model and style catalogs (TOML), the tiny-model registry written by `models build-tiny`, and the
registry of trained models (full fine-tunes), each visible to its owner only."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from genfoundry.config import Settings
from genfoundry.errors import Invalid, NotFound
from genfoundry.model_files import SingleFileBase, check_single_file_base, parse_single_file_source, resolve_model_file

FAMILIES = ("sd15", "sdxl", "flux")
TEXT_PROMPT_FORMATS = ("chat_template", "plain")
TINY_REGISTRY_FILE = "registry.toml"
TRAINED_DIR = "trained"  # under <home>/models: full fine-tunes, each visible to its owner only
TRAINED_REGISTRY_FILE = "registry.toml"  # under <home>/models/trained, written by services.trained_models


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
    owner_id: str | None = None  # a trained model's owner; None: a public base everyone sees
    base_id: str | None = None  # the base a trained model was fine-tuned from
    created: int = 0  # unix seconds; 0 for catalog bases
    size_gb: float | None = None  # the weights it loads (catalog `size_gb`); None: the catalog does not say


@dataclass(frozen=True)
class TextModelEntry:
    """A text base model (causal LM): where its weights come from and how its prompts are rendered."""

    id: str
    source: str
    prompt_format: str  # "chat_template" | "plain" (see genfoundry.text.formats)
    dtype: str = "auto"
    description: str = ""
    context_length: int | None = None  # None: the model config's max_position_embeddings
    size_gb: float | None = None  # the weights it loads (catalog `size_gb`); None: the catalog does not say


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


def _single_file_source(model_id: str, family: str, raw: dict[str, Any], models_dir: Path | None) -> str:
    """The source of an entry naming files in the models folder: `single_file` (the checkpoint), optional
    `components` (name → file) and `config` (a catalog id, diffusers folder or repo id for configs/tokenizers)."""
    config = raw.get("config")
    components = raw.get("components", {})
    if not isinstance(config, str) or not config:
        raise Invalid(
            f"catalog model {model_id!r}: a single_file base needs `config` (a catalog id or diffusers folder)"
        )
    if not isinstance(components, dict) or not all(isinstance(v, str) for v in components.values()):
        raise Invalid(f"catalog model {model_id!r}: `components` must map component names to file paths")
    base = SingleFileBase(
        checkpoint=str(resolve_model_file(models_dir, str(raw["single_file"]), param=f"{model_id}.single_file")),
        config=config,
        components={
            name: str(resolve_model_file(models_dir, path, param=f"{model_id}.components.{name}"))
            for name, path in components.items()
        },
    )
    check_single_file_base(model_id, family, base)
    return base.to_source()


def _entry(
    model_id: str, raw: dict[str, Any], *, relative_to: Path | None = None, models_dir: Path | None = None
) -> BaseModelEntry:
    family = raw.get("family")
    if family not in FAMILIES:
        raise Invalid(f"catalog model {model_id!r}: family must be one of {FAMILIES}, got {family!r}")
    single_file = "single_file" in raw
    source = _single_file_source(model_id, family, raw, models_dir) if single_file else str(raw["source"])
    if relative_to is not None and not single_file and not Path(source).is_absolute():
        source = str(relative_to / source)
    return BaseModelEntry(
        id=model_id,
        family=family,
        source=source,
        dtype=str(raw.get("dtype", "auto")),
        description=str(raw.get("description", "")),
        defaults=GenerationDefaults(**raw.get("defaults", {})),
        size_gb=_size_gb(model_id, raw),
    )


def _size_gb(model_id: str, raw: dict[str, Any]) -> float | None:
    size = raw.get("size_gb")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int | float) or size <= 0:
        raise Invalid(f"catalog model {model_id!r}: size_gb must be a positive number, got {size!r}")
    return float(size)


def _text_entry(model_id: str, raw: dict[str, Any], *, relative_to: Path | None = None) -> TextModelEntry:
    prompt_format = raw.get("prompt_format")
    if prompt_format not in TEXT_PROMPT_FORMATS:
        raise Invalid(
            f"text model {model_id!r}: prompt_format must be one of {TEXT_PROMPT_FORMATS}, got {prompt_format!r}"
        )
    context_length = raw.get("context_length")
    if context_length is not None and (not isinstance(context_length, int) or context_length < 2):
        raise Invalid(f"text model {model_id!r}: context_length must be an integer >= 2, got {context_length!r}")
    source = str(raw["source"])
    if relative_to is not None and not Path(source).is_absolute():
        source = str(relative_to / source)
    return TextModelEntry(
        id=model_id,
        source=source,
        prompt_format=prompt_format,
        dtype=str(raw.get("dtype", "auto")),
        description=str(raw.get("description", "")),
        context_length=context_length,
        size_gb=_size_gb(model_id, raw),
    )


def _trained_entries(registry: Path) -> dict[str, BaseModelEntry]:
    """The trained-model registry's entries; every one has an owner."""
    with registry.open("rb") as handle:
        raw = tomllib.load(handle).get("models", {})
    entries = {}
    for model_id, item in raw.items():
        owner_id = item.get("owner_id")
        if not isinstance(owner_id, str) or not owner_id:
            raise Invalid(f"trained model {model_id!r} in {registry} has no owner_id")
        entry = _entry(model_id, item, relative_to=registry.parent)
        entries[model_id] = dataclasses.replace(
            entry, owner_id=owner_id, base_id=item.get("base_id"), created=int(item.get("created", 0))
        )
    return entries


class Catalog:
    """Base models (shipped TOML or the settings' file, plus tiny models in the home) and styles, plus the
    trained models under `trained_dir`, each visible to its owner only.

    `models` holds the public bases only; a trained model is reached through `find_visible`, `get_visible`
    and `visible` with its owner's id, and is otherwise exactly as unknown as an id that does not exist.
    """

    def __init__(
        self,
        *,
        catalog_file: Path | None,
        styles_file: Path | None,
        tiny_dir: Path,
        trained_dir: Path | None = None,
        models_dir: Path | None = None,
    ) -> None:
        self._catalog_file = catalog_file
        self._models_dir = models_dir
        self._tiny_dir = tiny_dir
        self._trained_dir = trained_dir
        self._trained: dict[str, BaseModelEntry] = {}
        self._trained_signature: tuple[int, int, int] | None = None
        self.styles = {
            name: Style(name=name, prompt=raw["prompt"], negative_prompt=raw.get("negative_prompt", ""))
            for name, raw in _read_toml(styles_file, "styles.toml").get("styles", {}).items()
        }
        self.reload()

    def reload(self) -> None:
        """Re-read the catalog; called after `build-tiny` registers new models."""
        raw = _read_toml(self._catalog_file, "catalog.toml").get("models", {})
        models = {model_id: _entry(model_id, entry, models_dir=self._models_dir) for model_id, entry in raw.items()}
        # Text bases: the packaged list, then [text_models] tables of the settings' catalog file, then tiny ones.
        raw_text = dict(_read_toml(None, "text_models.toml").get("text_models", {}))
        if self._catalog_file is not None:
            raw_text.update(_read_toml(self._catalog_file, "catalog.toml").get("text_models", {}))
        text_models = {model_id: _text_entry(model_id, entry) for model_id, entry in raw_text.items()}
        registry = self._tiny_dir / TINY_REGISTRY_FILE
        if registry.exists():
            with registry.open("rb") as handle:
                tiny_registry = tomllib.load(handle)
            for model_id, entry in tiny_registry.get("models", {}).items():
                models[model_id] = _entry(model_id, entry, relative_to=self._tiny_dir)
            for model_id, entry in tiny_registry.get("text_models", {}).items():
                text_models[model_id] = _text_entry(model_id, entry, relative_to=self._tiny_dir)
        models = _with_single_file_configs(models)
        both = sorted(set(models) & set(text_models))
        if both:
            raise Invalid(f"catalog ids used for both an image and a text model: {', '.join(both)}")
        self.models = models
        self.text_models = text_models

    def get_text(self, model_id: str) -> TextModelEntry:
        """A text base model."""
        try:
            return self.text_models[model_id]
        except KeyError:
            raise NotFound(f"The model '{model_id}' does not exist", param="model") from None

    def find_visible(self, model_id: str, owner_id: str) -> BaseModelEntry | None:
        """A public base, or a trained model of `owner_id`; None for anything else (another user's too)."""
        if model_id in self.models:
            return self.models[model_id]
        entry = self.trained_models().get(model_id)
        return entry if entry is not None and entry.owner_id == owner_id else None

    def get_visible(self, model_id: str, owner_id: str) -> BaseModelEntry:
        """A public base or one of the caller's trained models; anything else (another user's too) is NotFound."""
        entry = self.find_visible(model_id, owner_id)
        if entry is None:
            raise NotFound(f"The model '{model_id}' does not exist", param="model")
        return entry

    def visible(self, owner_id: str) -> list[BaseModelEntry]:
        """The public bases, then `owner_id`'s trained models."""
        mine = [e for e in self.trained_models().values() if e.owner_id == owner_id and e.id not in self.models]
        return [*self.models.values(), *mine]

    def trained_models(self) -> dict[str, BaseModelEntry]:
        """Every trained model, re-read when the registry file changed (jobs register from other processes)."""
        if self._trained_dir is None:
            return {}
        registry = self._trained_dir / TRAINED_REGISTRY_FILE
        try:
            stat = registry.stat()
        except FileNotFoundError:
            self._trained, self._trained_signature = {}, None
            return self._trained
        # The registry is replaced by rename on every write, so a new inode marks a change even within
        # the file system's timestamp granularity.
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature != self._trained_signature:
            self._trained, self._trained_signature = _trained_entries(registry), signature
        return self._trained

    def style(self, name: str) -> Style:
        try:
            return self.styles[name]
        except KeyError:
            known = ", ".join(sorted(self.styles))
            raise Invalid(f"unknown style {name!r}; known styles: {known}", param="style") from None


def _with_single_file_configs(models: dict[str, BaseModelEntry]) -> dict[str, BaseModelEntry]:
    """Single-file bases whose `config` names another catalog base read their configs from that base's source."""
    resolved = dict(models)
    for model_id, entry in models.items():
        single = parse_single_file_source(entry.source)
        other = models.get(single.config) if single is not None else None
        if single is None or other is None:
            continue
        if other.family != entry.family or parse_single_file_source(other.source) is not None:
            raise Invalid(f"catalog model {model_id!r}: config {single.config!r} must be a {entry.family} folder base")
        source = dataclasses.replace(single, config=other.source).to_source()
        resolved[model_id] = dataclasses.replace(entry, source=source)
    return resolved


def trained_models_dir(models_dir: Path) -> Path:
    """Where trained models and their registry live: `<home>/models/trained`."""
    return Path(models_dir) / TRAINED_DIR


def open_catalog(settings: Settings) -> Catalog:
    """The catalog the settings name: shipped or configured bases and styles, the home's tiny and trained models."""
    return Catalog(
        catalog_file=settings.catalog_file,
        styles_file=settings.styles_file,
        tiny_dir=settings.tiny_models_dir,
        trained_dir=trained_models_dir(settings.home / "models"),
        models_dir=settings.models_dir,
    )
