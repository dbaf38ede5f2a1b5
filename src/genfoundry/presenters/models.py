"""Models in /v1/models' shape: catalog bases, text bases, adapters, custom classifiers and the prompt router."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genfoundry.catalog import BaseModelEntry, TextModelEntry
from genfoundry.db.tables import Adapter, Classifier
from genfoundry.schemas import ModelPublic

if TYPE_CHECKING:
    from genfoundry.router.head import ClassifierHead


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


def router_public(model_id: str, head: ClassifierHead) -> ModelPublic:
    """The shipped prompt router (`model_id` is the id the API gives it), from its loaded head."""
    return ModelPublic(
        id=model_id,
        created=0,
        owned_by="genfoundry",
        kind="classifier",
        family="text-classifier",
        base=head.encoder,
        description="the prompt router: image, diagram or chat",
        labels=list(head.labels),
    )
