"""The models a caller sees, gathered from the catalog (image and text bases, trained models), the adapter registry,
the classifier registry and the shipped prompt router: list them, find one by id, change or delete one; whether a
base's weights are on this machine, and the newest image made with each of the caller's models (its preview).

Functions of the `Services` container, since a model id may name any of these; the API and the CLI share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genfoundry.catalog import BaseModelEntry, TextModelEntry
from genfoundry.db.tables import Adapter, Classifier
from genfoundry.errors import Invalid
from genfoundry.hub import fetch_command
from genfoundry.model_files import parse_single_file_source
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo import classifiers as classifiers_repo
from genfoundry.repo import generations as generations_repo
from genfoundry.router.encoder import ENCODER_ID
from genfoundry.router.head import ClassifierHead
from genfoundry.services.adapters import UNSET, Unset
from genfoundry.services.classifiers import ROUTER_MODEL_ID
from genfoundry.services.embeddings import EMBEDDING_MODEL_IDS
from genfoundry.services.text import AUTO_MODEL
from genfoundry.services.trained_models import delete_trained_model

if TYPE_CHECKING:
    from genfoundry.services import Services


@dataclass(frozen=True)
class RouterModel:
    """The shipped prompt router, listed among the models under its own id."""

    id: str
    head: ClassifierHead


@dataclass(frozen=True)
class AutoModel:
    """`model: "auto"`: the prompt router answering /v1/chat/completions, listed so chat clients can offer it."""

    id: str = AUTO_MODEL


@dataclass(frozen=True)
class EmbeddingModel:
    """The sentence encoder serving /v1/embeddings, listed under its id (its aliases are found, not listed)."""

    id: str = ENCODER_ID


@dataclass(frozen=True)
class Weights:
    """Whether a base's weights are on this machine; if not, the command that fetches them (None: none can)."""

    present: bool
    fetch_command: str | None = None


@dataclass(frozen=True)
class ModelListing:
    bases: list[BaseModelEntry]  # public bases, then trained models (each with its owner)
    text_bases: list[TextModelEntry]
    adapters: list[Adapter]
    router: RouterModel
    classifiers: list[Classifier]
    weights: dict[str, Weights] = field(default_factory=dict)  # by base id (image, text and trained)
    previews: dict[str, str] = field(default_factory=dict)  # model id → its newest generation's id


Model = BaseModelEntry | TextModelEntry | Adapter | Classifier | RouterModel | AutoModel | EmbeddingModel


def weights_of(entry: BaseModelEntry | TextModelEntry, *, tiny_dir: Path) -> Weights:
    """Whether a catalog base's weights are on this machine (see `weights_of_source`)."""
    marker = "config.json" if isinstance(entry, TextModelEntry) else "model_index.json"
    return weights_of_source(entry.source, marker, tiny_dir=tiny_dir)


def weights_of_source(source: str, marker: str, *, tiny_dir: Path) -> Weights:
    """A local folder is present when it holds `marker`; a Hugging Face repo id when its snapshot is in the local
    cache (looked up on disk only, never on the Hub), else fetched with `hf download`. Models in the tiny folder
    (tiny-*, mini-*) are installed by `models build-tiny`, not fetched."""
    single = parse_single_file_source(source)
    if single is not None:  # files in the models folder: present when every one is there
        return Weights(present=all(path.is_file() for path in single.files()))
    path = Path(source)
    if path.is_absolute() or source.startswith((".", "~")):
        if (path.expanduser() / marker).is_file():
            return Weights(present=True)
        return Weights(
            present=False, fetch_command="genfoundry models build-tiny" if is_shipped(source, tiny_dir) else None
        )
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(source, marker)
    except ValueError:  # not a valid repo id either: nothing can fetch it
        return Weights(present=False)
    if isinstance(cached, str):
        return Weights(present=True)
    return Weights(present=False, fetch_command=fetch_command(source))


def is_shipped(source: str, tiny_dir: Path) -> bool:
    """Whether `source` is a folder in the tiny-model home (the tiny-* and mini-* models of `models build-tiny`)."""
    path = Path(source).expanduser()
    return path.is_absolute() and path.resolve().is_relative_to(Path(tiny_dir).resolve())


def public_bases_weights(services: Services) -> list[tuple[BaseModelEntry | TextModelEntry, Weights]]:
    """Every public image and text base of the catalog with its weights' presence on this machine."""
    catalog, tiny_dir = services.catalog, services.settings.tiny_models_dir
    entries: list[BaseModelEntry | TextModelEntry] = [*catalog.models.values(), *catalog.text_models.values()]
    return [(entry, weights_of(entry, tiny_dir=tiny_dir)) for entry in entries]


def previews_of(services: Services, owner_id: str, model_ids: list[str]) -> dict[str, str]:
    """The id of `owner_id`'s newest generation made with each of `model_ids` (as the request's model)."""
    if not model_ids:
        return {}
    with services.sessions() as session:
        return generations_repo.newest_generation_ids(session=session, owner_id=owner_id, models=model_ids)


def router_model(services: Services) -> RouterModel:
    return RouterModel(id=ROUTER_MODEL_ID, head=services.classifiers.default_head())


def list_models(services: Services, owner_id: str | None) -> ModelListing:
    """`owner_id`'s view (public bases and their own models); None: every user's, the local operator's view."""
    catalog = services.catalog
    with services.sessions() as session:
        if owner_id is None:
            bases = [*catalog.models.values(), *catalog.trained_models().values()]
            adapters = adapters_repo.list_all_adapters(session=session)
            classifiers = classifiers_repo.list_all_classifiers(session=session)
        else:
            bases = catalog.visible(owner_id)
            adapters = adapters_repo.list_adapters(session=session, owner_id=owner_id)
            classifiers = []
    text_bases = list(catalog.text_models.values())
    previews: dict[str, str] = {}
    if owner_id is not None:
        classifiers = services.classifiers.list_models(owner_id)
        mine = [adapter.id for adapter in adapters] + [entry.id for entry in bases if entry.owner_id is not None]
        previews = previews_of(services, owner_id, mine)
    tiny_dir = services.settings.tiny_models_dir
    return ModelListing(
        bases=bases,
        text_bases=text_bases,
        adapters=adapters,
        router=router_model(services),
        classifiers=classifiers,
        weights={
            **{entry.id: weights_of(entry, tiny_dir=tiny_dir) for entry in bases},
            **{entry.id: weights_of(entry, tiny_dir=tiny_dir) for entry in text_bases},
        },
        previews=previews,
    )


def find_model(services: Services, owner_id: str, model_id: str) -> Model:
    """ "auto", a text base, an image base or trained model, the router, a classifier or an adapter of `owner_id`;
    else a 404."""
    catalog = services.catalog
    if model_id == AUTO_MODEL:
        return AutoModel()
    if model_id in EMBEDDING_MODEL_IDS:
        return EmbeddingModel(id=model_id)
    if model_id in catalog.text_models:
        return catalog.text_models[model_id]
    if (entry := catalog.find_visible(model_id, owner_id)) is not None:
        return entry
    if model_id == ROUTER_MODEL_ID:
        return router_model(services)
    if (classifier := services.classifiers.get(owner_id, model_id)) is not None:
        return classifier
    with services.sessions() as session:
        return adapters_repo.require_adapter(session=session, owner_id=owner_id, adapter_id=model_id)


def delete_model(services: Services, *, owner_id: str, model_id: str) -> None:
    """Delete `owner_id`'s trained model, classifier or adapter; catalog bases and the router cannot be deleted."""
    catalog = services.catalog
    if model_id in (*catalog.models, *catalog.text_models, ROUTER_MODEL_ID, AUTO_MODEL, *EMBEDDING_MODEL_IDS):
        raise Invalid("base models come from the catalog and cannot be deleted", param="model")
    trained = catalog.find_visible(model_id, owner_id)
    if trained is not None and trained.owner_id is not None:
        delete_trained_model(
            sessions=services.sessions,
            engine=services.image_engine,
            models_dir=services.settings.home / "models",
            owner_id=owner_id,
            model_id=model_id,
        )
        return
    if services.classifiers.get(owner_id, model_id) is not None:
        services.classifiers.delete(owner_id=owner_id, classifier_id=model_id)
        return
    services.adapters.delete(owner_id=owner_id, adapter_id=model_id)


def update_model(
    services: Services,
    *,
    owner_id: str,
    model_id: str,
    name: str | None = None,
    trigger_word: str | Unset | None = UNSET,
    tags: dict[str, str] | None = None,
) -> Adapter:
    """Rename `owner_id`'s adapter or change its trigger word or tags; other models are not edited here (400)."""
    catalog = services.catalog
    if model_id in (*catalog.models, *catalog.text_models, ROUTER_MODEL_ID, AUTO_MODEL, *EMBEDDING_MODEL_IDS):
        raise Invalid("base models come from the catalog and cannot be changed", param="model")
    if catalog.find_visible(model_id, owner_id) is not None or services.classifiers.get(owner_id, model_id):
        raise Invalid("only adapters can be renamed or given a trigger word and tags", param="model")
    return services.adapters.update(
        owner_id=owner_id, adapter_id=model_id, name=name, trigger_word=trigger_word, tags=tags
    )


def extras_of(services: Services, owner_id: str, model: Model) -> tuple[Weights | None, str | None]:
    """What `list_models` adds for one model: a base's weights (an adapter: its base's), and the newest
    generation's id for one of the caller's adapters or trained models."""
    weights = None
    base: BaseModelEntry | TextModelEntry | None = None
    if isinstance(model, BaseModelEntry | TextModelEntry):
        base = model
    elif isinstance(model, Adapter):
        catalog = services.catalog
        base = catalog.text_models.get(model.base_id) or catalog.find_visible(model.base_id, owner_id)
    if base is not None:
        weights = weights_of(base, tiny_dir=services.settings.tiny_models_dir)
    mine = isinstance(model, Adapter) or (isinstance(model, BaseModelEntry) and model.owner_id is not None)
    preview = previews_of(services, owner_id, [model.id]).get(model.id) if mine else None
    return weights, preview
