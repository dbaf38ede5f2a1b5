"""Seed 004's API (the DreamBooth TFG) under `/compat/dreambooth`: generate an image from a prompt, with Stable
Diffusion or one of the caller's custom models, and manage those models (list, delete)."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from genfoundry.api.admission import ImagePlaceDep
from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.routes.compat.images import PNG_ANSWER, png_response
from genfoundry.errors import NotFound
from genfoundry.presenters.models import adapter_public, base_public
from genfoundry.schemas import DeletedPublic, ImageOptions, ListPublic, ModelPublic
from genfoundry.services import Services, model_directory
from genfoundry.services.model_directory import ModelListing

router = APIRouter(prefix="/compat/dreambooth", tags=["compat: dreambooth"])


class DreamBoothRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"prompt": "un perro golden retriever en la playa"}]}
    )

    prompt: str = Field(min_length=1)
    # One of the caller's custom models (a DreamBooth model or an adapter); none: `compat.dreambooth_model`.
    model: str | None = Field(default=None, min_length=1, max_length=120)


def _custom_models(services: Services, owner_id: str) -> ModelListing:
    """/v1/models' listing narrowed to the caller's own image models (trained bases, image adapters)."""
    listing = model_directory.list_models(services, owner_id)
    return replace(
        listing,
        bases=[entry for entry in listing.bases if entry.owner_id == owner_id],
        adapters=[adapter for adapter in listing.adapters if adapter.family != "text"],
    )


@router.post("/generate", response_class=Response, responses=PNG_ANSWER)
async def generate_dreambooth(
    body: DreamBoothRequest, services: ServicesDep, place: ImagePlaceDep, principal: PrincipalDep
) -> Response:
    """Text to image: the PNG itself."""
    options = ImageOptions(prompt=body.prompt, model=body.model or services.settings.compat.dreambooth_model)
    [image] = await services.images.generate(owner_id=principal.user_id, options=options, place=place)
    return png_response(image)


@router.get("/models")
def read_dreambooth_models(request: Request, services: ServicesDep, principal: PrincipalDep) -> ListPublic[ModelPublic]:
    """The caller's custom image models: full DreamBooth models, then adapters (LoRA and DreamBooth-LoRA)."""
    listing = _custom_models(services, principal.user_id)
    base_url = str(request.base_url)

    def preview(model_id: str) -> str | None:
        generation_id = listing.previews.get(model_id)
        return services.signer.image_url(base_url, generation_id) if generation_id is not None else None

    return ListPublic(
        data=[
            *(base_public(e, weights=listing.weights.get(e.id), preview_url=preview(e.id)) for e in listing.bases),
            *(adapter_public(a, preview_url=preview(a.id)) for a in listing.adapters),
        ]
    )


@router.delete("/models/{model_id}")
def delete_dreambooth_model(model_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    """Delete one of the caller's custom image models (as `DELETE /v1/models/{model_id}`); bases are refused (400),
    anything else not listed at `/models` (a classifier, a text adapter, another user's model) is a 404."""
    listing = _custom_models(services, principal.user_id)
    owned = {entry.id for entry in listing.bases} | {adapter.id for adapter in listing.adapters}
    if model_id not in services.catalog.models and model_id not in owned:
        raise NotFound(f"The model '{model_id}' does not exist", param="model_id")
    model_directory.delete_model(services, owner_id=principal.user_id, model_id=model_id)
    return DeletedPublic(id=model_id, object="model")
