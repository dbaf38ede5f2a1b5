"""Models: catalog bases and the caller's adapters (OpenAI's list/object shapes plus our fields)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.errors import Invalid, NotFound, TooLarge
from genfoundry.presenters.models import adapter_public, base_public, classifier_public, router_public, text_base_public
from genfoundry.repo import adapters as adapters_repo
from genfoundry.schemas import DeletedPublic, ListPublic, ModelPublic
from genfoundry.services import Services
from genfoundry.services.adapters import parse_tags
from genfoundry.services.classifiers import ROUTER_MODEL_ID
from genfoundry.services.trained_models import delete_trained_model

router = APIRouter(prefix="/v1/models", tags=["models"])


def _find(services: Services, owner_id: str, model_id: str) -> ModelPublic:
    if model_id in services.catalog.text_models:
        return text_base_public(services.catalog.text_models[model_id])
    if (entry := services.catalog.find_visible(model_id, owner_id)) is not None:
        return base_public(entry)
    if model_id == ROUTER_MODEL_ID:
        return router_public(ROUTER_MODEL_ID, services.classifiers.default_head())
    if (classifier := services.classifiers.get(owner_id, model_id)) is not None:
        return classifier_public(classifier)
    with services.sessions() as session:
        return adapter_public(adapters_repo.require_adapter(session=session, owner_id=owner_id, adapter_id=model_id))


@router.get("")
async def read_models(services: ServicesDep, principal: PrincipalDep) -> ListPublic[ModelPublic]:
    def load() -> ListPublic[ModelPublic]:
        with services.sessions() as session:
            adapters = adapters_repo.list_adapters(session=session, owner_id=principal.user_id)
            data = [base_public(entry) for entry in services.catalog.visible(principal.user_id)]
            data += [text_base_public(entry) for entry in services.catalog.text_models.values()]
            data += [adapter_public(adapter) for adapter in adapters]
        classifiers = [classifier_public(row) for row in services.classifiers.list_models(principal.user_id)]
        return ListPublic(
            data=[*data, router_public(ROUTER_MODEL_ID, services.classifiers.default_head()), *classifiers]
        )

    return await run_in_threadpool(load)


@router.get("/{model_id}")
async def read_model(model_id: str, services: ServicesDep, principal: PrincipalDep) -> ModelPublic:
    return await run_in_threadpool(_find, services, principal.user_id, model_id)


@router.post("", status_code=201)
async def create_model(
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
    if base not in services.catalog.models:
        raise NotFound(f"The base model '{base}' does not exist", param="base")
    limit = services.settings.limits.max_body_bytes
    work_dir = services.settings.home / "tmp"
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        upload = Path(tmp) / "upload.safetensors"
        with upload.open("wb") as handle:
            await run_in_threadpool(shutil.copyfileobj, file.file, handle)
        if upload.stat().st_size > limit:
            raise TooLarge(f"file is larger than {limit} bytes", param="file")
        adapter = await run_in_threadpool(
            services.adapters.import_upload,
            owner_id=principal.user_id,
            upload=upload,
            base_id=base,
            name=name,
            trigger_word=(trigger_word or "").strip() or None,
            tags=parsed_tags,
        )
    return adapter_public(adapter)


@router.get("/{model_id}/content", response_class=Response)
async def read_model_content(
    model_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    format: Annotated[Literal["diffusers", "kohya"], Query()] = "diffusers",
) -> Response:
    """Download an adapter's weights as safetensors, in diffusers or kohya (A1111/ComfyUI) key format."""

    def load() -> bytes:
        with services.sessions() as session:
            adapter = adapters_repo.get_adapter(session=session, owner_id=principal.user_id, adapter_id=model_id)
        if adapter is None:
            if model_id in services.catalog.models:
                raise Invalid("only adapters can be downloaded; base weights come from their source", param="model")
            raise NotFound(f"The model '{model_id}' does not exist")
        return services.adapters.export(adapter, fmt=format)

    data = await run_in_threadpool(load)
    filename = f"{model_id}-{format}.safetensors"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete("/{model_id}")
async def delete_model(model_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    if model_id in services.catalog.models or model_id in services.catalog.text_models or model_id == ROUTER_MODEL_ID:
        raise Invalid("base models come from the catalog and cannot be deleted", param="model")
    trained = services.catalog.find_visible(model_id, principal.user_id)
    if trained is not None and trained.owner_id is not None:
        await run_in_threadpool(
            lambda: delete_trained_model(
                sessions=services.sessions,
                engine=services.image_engine,
                models_dir=services.settings.home / "models",
                owner_id=principal.user_id,
                model_id=model_id,
            )
        )
        return DeletedPublic(id=model_id, object="model")
    if await run_in_threadpool(services.classifiers.get, principal.user_id, model_id) is not None:
        await run_in_threadpool(lambda: services.classifiers.delete(owner_id=principal.user_id, classifier_id=model_id))
        return DeletedPublic(id=model_id, object="model")
    await run_in_threadpool(services.adapters.delete, owner_id=principal.user_id, adapter_id=model_id)
    return DeletedPublic(id=model_id, object="model")
