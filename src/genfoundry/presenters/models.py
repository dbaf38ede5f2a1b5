"""Models in /v1/models' shape: catalog bases, text bases, adapters, custom classifiers and the prompt router."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from genfoundry.catalog import BaseModelEntry, TextModelEntry
from genfoundry.db.tables import Adapter, Classifier
from genfoundry.schemas import ModelPublic
from genfoundry.schemas.models import Capability
from genfoundry.services.model_directory import AutoModel, EmbeddingModel
from genfoundry.services.text import AUTO_MODEL
from genfoundry.services.text_adapters import TEXT_FAMILY

if TYPE_CHECKING:
    from genfoundry.services.model_directory import Model, ModelListing, RouterModel, Weights

PreviewUrl = Callable[[str], str]  # a generation's id → its signed image URL


IMAGE_CAPABILITIES: list[Capability] = ["images"]
TEXT_CAPABILITIES: list[Capability] = ["chat", "completions"]
CLASSIFY_CAPABILITIES: list[Capability] = ["classify"]


def base_public(
    entry: BaseModelEntry, *, weights: Weights | None = None, preview_url: str | None = None
) -> ModelPublic:
    return ModelPublic(
        id=entry.id,
        created=entry.created,
        owned_by=entry.owner_id or "genfoundry",  # a trained model is its owner's
        kind="base",
        family=entry.family,
        capabilities=IMAGE_CAPABILITIES,
        base=entry.base_id,
        description=entry.description or None,
        weights_present=weights.present if weights is not None else None,
        fetch_command=weights.fetch_command if weights is not None else None,
        available=weights is None or weights.present,
        size_gb=entry.size_gb,
        preview_url=preview_url,
    )


def text_base_public(entry: TextModelEntry, *, weights: Weights | None = None) -> ModelPublic:
    """A text base: family "text"; served by /v1/chat/completions and /v1/completions."""
    return ModelPublic(
        id=entry.id,
        created=0,
        owned_by="genfoundry",
        kind="base",
        family="text",
        capabilities=TEXT_CAPABILITIES,
        description=entry.description or None,
        weights_present=weights.present if weights is not None else None,
        fetch_command=weights.fetch_command if weights is not None else None,
        available=weights is None or weights.present,
        size_gb=entry.size_gb,
    )


def adapter_public(
    adapter: Adapter, *, preview_url: str | None = None, base_weights: Weights | None = None
) -> ModelPublic:
    """An adapter; `base_weights` (its base's) makes it unavailable while the base's weights are not here."""
    return ModelPublic(
        id=adapter.id,
        created=int(adapter.created_at.timestamp()),
        owned_by=adapter.owner_id,
        kind="adapter",
        family=adapter.family,
        capabilities=TEXT_CAPABILITIES if adapter.family == TEXT_FAMILY else IMAGE_CAPABILITIES,
        base=adapter.base_id,
        trigger_word=adapter.trigger_word,
        tags={str(k): str(v) for k, v in adapter.tags.items()},
        name=adapter.name,
        description=adapter.name,
        rank=adapter.rank,
        source_format=adapter.source_format,
        available=base_weights is None or base_weights.present,
        preview_url=preview_url,
    )


def classifier_public(classifier: Classifier) -> ModelPublic:
    return ModelPublic(
        id=classifier.id,
        created=int(classifier.created_at.timestamp()),
        owned_by=classifier.owner_id,
        kind="classifier",
        family="text-classifier",
        capabilities=CLASSIFY_CAPABILITIES,
        base=classifier.encoder,
        name=classifier.name,
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
        capabilities=CLASSIFY_CAPABILITIES,
        base=router.head.encoder,
        description="the prompt router: image, diagram or chat",
        labels=list(router.head.labels),
    )


def auto_public() -> ModelPublic:
    """`model: "auto"` of /v1/chat/completions: the prompt router picks an image, a diagram or a text answer."""
    return ModelPublic(
        id=AUTO_MODEL,
        created=0,
        owned_by="genfoundry",
        kind="auto",
        family="auto",
        capabilities=["chat"],
        description="the prompt router answers with an image, a diagram or text, whichever the message asks for",
    )


def embedding_model_public(model: EmbeddingModel) -> ModelPublic:
    """The sentence encoder of /v1/embeddings (the prompt router's own)."""
    return ModelPublic(
        id=model.id,
        created=0,
        owned_by="genfoundry",
        kind="base",
        family="text-embedding",
        capabilities=["embeddings"],
        description="all-MiniLM-L6-v2 sentence encoder: 384-dimensional unit vectors, 256-token window",
    )


def model_public(
    model: Model,
    *,
    weights: Weights | None = None,
    preview_id: str | None = None,
    preview_url: PreviewUrl | None = None,
) -> ModelPublic:
    """One model; `weights` for a base (an adapter: its base's), `preview_id` (turned into a URL by `preview_url`)
    for the caller's own."""
    url = preview_url(preview_id) if preview_id is not None and preview_url is not None else None
    if isinstance(model, BaseModelEntry):
        return base_public(model, weights=weights, preview_url=url)
    if isinstance(model, TextModelEntry):
        return text_base_public(model, weights=weights)
    if isinstance(model, Adapter):
        return adapter_public(model, preview_url=url, base_weights=weights)
    if isinstance(model, Classifier):
        return classifier_public(model)
    if isinstance(model, AutoModel):
        return auto_public()
    if isinstance(model, EmbeddingModel):
        return embedding_model_public(model)
    return router_public(model)


def models_public(listing: ModelListing, *, preview_url: PreviewUrl | None = None) -> list[ModelPublic]:
    """Image bases, text bases, "auto", the embedding model, adapters, the router, then classifiers (in order)."""

    def url(model_id: str) -> str | None:
        preview_id = listing.previews.get(model_id)
        return preview_url(preview_id) if preview_id is not None and preview_url is not None else None

    return [
        *(
            base_public(entry, weights=listing.weights.get(entry.id), preview_url=url(entry.id))
            for entry in listing.bases
        ),
        *(text_base_public(entry, weights=listing.weights.get(entry.id)) for entry in listing.text_bases),
        auto_public(),
        embedding_model_public(EmbeddingModel()),
        *(
            adapter_public(adapter, preview_url=url(adapter.id), base_weights=listing.weights.get(adapter.base_id))
            for adapter in listing.adapters
        ),
        router_public(listing.router),
        *(classifier_public(classifier) for classifier in listing.classifiers),
    ]
