"""Models: catalog bases and the caller's adapters (OpenAI's list/object shapes plus our fields)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.presenters.models import adapter_public, model_public, models_public
from genfoundry.schemas import DeletedPublic, ListPublic, ModelPublic
from genfoundry.schemas.models import Capability, ModelUpdate
from genfoundry.services import Services, model_directory
from genfoundry.services.adapters import UNSET, parse_tags

router = APIRouter(prefix="/v1/models", tags=["models"])


def _preview_url(services: Services, request: Request) -> Callable[[str], str]:
    base_url = str(request.base_url)
    return lambda generation_id: services.signer.image_url(base_url, generation_id)


@router.get("")
def read_models(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    capability: Annotated[Capability | None, Query(description="only the models that can do this")] = None,
) -> ListPublic[ModelPublic]:
    """Every model with its `capabilities` (chat, completions, images, classify, embeddings), "auto" included;
    `capability=chat` keeps the ones a chat client can offer. Bases say whether their weights are on this machine
    (`weights_present`) and how to fetch them (`fetch_command`); the caller's adapters and trained models carry
    their newest image as `preview_url`."""
    listing = model_directory.list_models(services, principal.user_id)
    models = models_public(listing, preview_url=_preview_url(services, request))
    return ListPublic(data=[m for m in models if capability is None or capability in m.capabilities])


@router.get("/{model_id}")
def read_model(model_id: str, request: Request, services: ServicesDep, principal: PrincipalDep) -> ModelPublic:
    model = model_directory.find_model(services, principal.user_id, model_id)
    weights, preview_id = model_directory.extras_of(services, principal.user_id, model)
    return model_public(model, weights=weights, preview_id=preview_id, preview_url=_preview_url(services, request))


@router.patch("/{model_id}")
def update_model(
    model_id: str, body: ModelUpdate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> ModelPublic:
    """Rename an adapter (`name`), set or clear its `trigger_word`, or replace its `tags`; fields left out are
    unchanged. Bases, trained models and classifiers are not edited here (400)."""
    fields = body.model_dump(exclude_unset=True)
    adapter = model_directory.update_model(
        services,
        owner_id=principal.user_id,
        model_id=model_id,
        name=fields.get("name"),
        trigger_word=fields.get("trigger_word", UNSET),
        tags=fields.get("tags"),
    )
    _, preview_id = model_directory.extras_of(services, principal.user_id, adapter)
    return model_public(adapter, preview_id=preview_id, preview_url=_preview_url(services, request))


@router.post("", status_code=201)
def create_model(
    services: ServicesDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="LoRA weights (.safetensors) in diffusers/PEFT or kohya format")],
    base: Annotated[str, Form(min_length=1, max_length=120)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    trigger_word: Annotated[str | None, Form(max_length=200)] = None,
    tags: Annotated[str | None, Form(description="comma-separated key=value, e.g. industry=technology")] = None,
) -> ModelPublic:
    """Import a LoRA trained elsewhere: checked against the base's layers, stored in diffusers format."""
    parsed_tags = parse_tags(tags)
    adapter = services.adapters.import_file(
        owner_id=principal.user_id,
        source=file.file,
        limit=services.settings.limits.max_body_bytes,
        base_id=base,
        name=name,
        trigger_word=(trigger_word or "").strip() or None,
        tags=parsed_tags,
    )
    return adapter_public(adapter)


@router.get("/{model_id}/content", response_class=Response)
def read_model_content(
    model_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    format: Annotated[Literal["diffusers", "kohya"], Query()] = "diffusers",
) -> Response:
    """Download an adapter's weights as safetensors, in diffusers or kohya (A1111/ComfyUI) key format."""
    data = services.adapters.export_owned(owner_id=principal.user_id, adapter_id=model_id, fmt=format)
    filename = f"{model_id}-{format}.safetensors"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete("/{model_id}")
def delete_model(model_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    model_directory.delete_model(services, owner_id=principal.user_id, model_id=model_id)
    return DeletedPublic(id=model_id, object="model")
