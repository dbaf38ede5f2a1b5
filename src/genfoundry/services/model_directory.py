"""The models a caller sees, gathered from the catalog (image and text bases, trained models), the adapter registry,
the classifier registry and the shipped prompt router: list them, find one by id, delete one.

Functions of the `Services` container, since a model id may name any of these; the API and the CLI share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from genfoundry.catalog import BaseModelEntry, TextModelEntry
from genfoundry.db.tables import Adapter, Classifier
from genfoundry.errors import Invalid
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo import classifiers as classifiers_repo
from genfoundry.router.head import ClassifierHead
from genfoundry.services.classifiers import ROUTER_MODEL_ID
from genfoundry.services.trained_models import delete_trained_model

if TYPE_CHECKING:
    from genfoundry.services import Services


@dataclass(frozen=True)
class RouterModel:
    """The shipped prompt router, listed among the models under its own id."""

    id: str
    head: ClassifierHead


@dataclass(frozen=True)
class ModelListing:
    bases: list[BaseModelEntry]  # public bases, then trained models (each with its owner)
    text_bases: list[TextModelEntry]
    adapters: list[Adapter]
    router: RouterModel
    classifiers: list[Classifier]


Model = BaseModelEntry | TextModelEntry | Adapter | Classifier | RouterModel


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
    if owner_id is not None:
        classifiers = services.classifiers.list_models(owner_id)
    return ModelListing(
        bases=bases,
        text_bases=list(catalog.text_models.values()),
        adapters=adapters,
        router=router_model(services),
        classifiers=classifiers,
    )


def find_model(services: Services, owner_id: str, model_id: str) -> Model:
    """A text base, an image base or trained model, the router, a classifier or an adapter of `owner_id`; else a
    404."""
    catalog = services.catalog
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
    if model_id in catalog.models or model_id in catalog.text_models or model_id == ROUTER_MODEL_ID:
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
