"""The models used when a request leaves the choice to us, picked from what this machine has.

A setting that names a model (GENFOUNDRY_ASSISTANT__IMAGE_MODEL, …) always wins. Left unset, each default is the
first model in its order whose weights are here (a local folder, or a snapshot in the HF cache; never asked of
the Hub): a real base of the catalog, then the pretrained `mini-*` model, then the random `tiny-*` one, which
`models build-tiny` installs. When none is here the order's shipped model is named, so a request says what to
install. The server logs its picks once at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from genfoundry.catalog import Catalog
from genfoundry.config import Settings
from genfoundry.inference.caption import CaptionerSpec
from genfoundry.models.mini_captioner import MINI_CAPTIONER_ID as MINI_CAPTIONER
from genfoundry.models.mini_llm import MINI_LLM_ID as MINI_LLM
from genfoundry.models.mini_sd15 import MINI_SD15_ID as MINI_SD15
from genfoundry.models.tiny_captioner import TINY_CAPTIONER_ID as TINY_CAPTIONER
from genfoundry.models.tiny_llm import TINY_LLM_ID as TINY_LLM
from genfoundry.services.classifiers import ROUTER_MODEL_ID
from genfoundry.services.model_directory import is_shipped, weights_of, weights_of_source

TINY_SD15 = "tiny-sd15"
# The real captioner preferred when cached: small enough for a CPU, and the quality the captions need.
REAL_CAPTIONER = "florence-2-base"


@dataclass(frozen=True)
class Pick:
    """One default: the model and why (`configured`, `on this machine`, or `nothing installed`)."""

    model: str
    reason: str


@dataclass(frozen=True)
class DefaultModels:
    image_model: Pick
    captioner: Pick
    text_model: Pick
    router: Pick

    def summary(self) -> str:
        """One line for the start-up log."""
        picks = (
            ("image model", self.image_model),
            ("captioner", self.captioner),
            ("text model for model=auto", self.text_model),
            ("router", self.router),
        )
        return "; ".join(f"{name} {pick.model} ({pick.reason})" for name, pick in picks)

    def as_dict(self) -> dict[str, str]:
        return {
            "image_model": self.image_model.model,
            "captioner": self.captioner.model,
            "text_model": self.text_model.model,
            "router": self.router.model,
        }


def _first_present(candidates: Iterable[tuple[str, bool]], fallback: str) -> Pick:
    for model_id, present in candidates:
        if present:
            return Pick(model_id, "on this machine")
    return Pick(fallback, "nothing installed; `genfoundry models build-tiny` installs it")


def pick_image_model(catalog: Catalog, tiny_dir: Path) -> Pick:
    """A real SD / FLUX base in catalog order, else mini-sd15, else tiny-sd15."""
    real = [entry for entry in catalog.models.values() if not is_shipped(entry.source, tiny_dir)]
    shipped = [catalog.models[i] for i in (MINI_SD15, TINY_SD15) if i in catalog.models]
    return _first_present(
        ((entry.id, weights_of(entry, tiny_dir=tiny_dir).present) for entry in [*real, *shipped]), MINI_SD15
    )


def pick_text_model(catalog: Catalog, tiny_dir: Path) -> Pick:
    """A real chat model (one with a chat template) in catalog order, else mini-llm, else tiny-llm."""
    models = catalog.text_models
    real = [e for e in models.values() if e.prompt_format == "chat_template" and not is_shipped(e.source, tiny_dir)]
    shipped = [models[i] for i in (MINI_LLM, TINY_LLM) if i in models]
    return _first_present(
        ((entry.id, weights_of(entry, tiny_dir=tiny_dir).present) for entry in [*real, *shipped]), TINY_LLM
    )


def pick_captioner(captioners: Mapping[str, CaptionerSpec], tiny_dir: Path) -> Pick:
    """florence-2-base when cached, else mini-captioner, else tiny-captioner."""
    order = [captioners[i] for i in (REAL_CAPTIONER, MINI_CAPTIONER, TINY_CAPTIONER) if i in captioners]
    return _first_present(
        ((spec.id, weights_of_source(spec.source, "config.json", tiny_dir=tiny_dir).present) for spec in order),
        TINY_CAPTIONER,
    )


def pick_default_models(settings: Settings, catalog: Catalog, captioners: Mapping[str, CaptionerSpec]) -> DefaultModels:
    """The settings' models where they name one, else what this machine has (see the module's docstring)."""
    tiny_dir = settings.tiny_models_dir
    configured = "configured"
    image, text = settings.assistant.image_model, settings.assistant.text_model
    captioner = settings.datasets.default_captioner
    return DefaultModels(
        image_model=Pick(image, configured) if image else pick_image_model(catalog, tiny_dir),
        captioner=Pick(captioner, configured) if captioner else pick_captioner(captioners, tiny_dir),
        text_model=Pick(text, configured) if text else pick_text_model(catalog, tiny_dir),
        router=Pick(ROUTER_MODEL_ID, "shipped"),
    )


def with_defaults(settings: Settings, defaults: DefaultModels) -> Settings:
    """`settings` with its unset default models filled in from `defaults`."""
    assistant = settings.assistant.model_copy(
        update={"image_model": defaults.image_model.model, "text_model": defaults.text_model.model}
    )
    datasets = settings.datasets.model_copy(update={"default_captioner": defaults.captioner.model})
    return settings.model_copy(update={"assistant": assistant, "datasets": datasets})
