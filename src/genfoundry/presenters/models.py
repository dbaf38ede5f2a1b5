"""Models in /v1/models' shape: catalog bases, text bases, adapters, custom classifiers and the prompt router."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genfoundry.catalog import BaseModelEntry, TextModelEntry
from genfoundry.db.tables import Adapter, Classifier
from genfoundry.schemas import ModelPublic

if TYPE_CHECKING:
    from genfoundry.services.model_directory import Model, ModelListing, RouterModel


def base_public(entry: BaseModelEntry) -> ModelPublic:
    return ModelPublic(
        id=entry.id,
        created=entry.created,
        owned_by=entry.owner_id or "genfoundry",  # a trained model is its owner's
        kind="base",
        family=entry.family,
        base=entry.base_id,
        description=entry.description or None,
    )


def text_base_public(entry: TextModelEntry) -> ModelPublic:
    """A text base: family "text"; served by /v1/chat/completions and /v1/completions."""
    return ModelPublic(
        id=entry.id, created=0, owned_by="genfoundry", kind="base", family="text", description=entry.description or None
    )


def adapter_public(adapter: Adapter) -> ModelPublic:
    return ModelPublic(
        id=adapter.id,
        created=int(adapter.created_at.timestamp()),
        owned_by=adapter.owner_id,
        kind="adapter",
        family=adapter.family,
        base=adapter.base_id,
        trigger_word=adapter.trigger_word,
        tags={str(k): str(v) for k, v in adapter.tags.items()},
        description=adapter.name,
        rank=adapter.rank,
        source_format=adapter.source_format,
    )


def classifier_public(classifier: Classifier) -> ModelPublic:
    return ModelPublic(
        id=classifier.id,
        created=int(classifier.created_at.timestamp()),
        owned_by=classifier.owner_id,
        kind="classifier",
        family="text-classifier",
        base=classifier.encoder,
        description=classifier.name,
        labels=list(classifier.labels),
    )


def router_public(router: RouterModel) -> ModelPublic:
    """The shipped prompt router, from its loaded head."""
    return ModelPublic(
        id=router.id,
        created=0,
        owned_by="genfoundry",
        kind="classifier",
        family="text-classifier",
        base=router.head.encoder,
        description="the prompt router: image, diagram or chat",
        labels=list(router.head.labels),
    )


def model_public(model: Model) -> ModelPublic:
    if isinstance(model, BaseModelEntry):
        return base_public(model)
    if isinstance(model, TextModelEntry):
        return text_base_public(model)
    if isinstance(model, Adapter):
        return adapter_public(model)
    if isinstance(model, Classifier):
        return classifier_public(model)
    return router_public(model)


def models_public(listing: ModelListing) -> list[ModelPublic]:
    """Image bases, text bases, adapters, the router, then classifiers: /v1/models' order."""
    return [
        *(base_public(entry) for entry in listing.bases),
        *(text_base_public(entry) for entry in listing.text_bases),
        *(adapter_public(adapter) for adapter in listing.adapters),
        router_public(listing.router),
        *(classifier_public(classifier) for classifier in listing.classifiers),
    ]
