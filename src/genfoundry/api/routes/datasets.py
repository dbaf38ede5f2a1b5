"""Datasets: ZIP uploads, image URLs, items and captions, captioning jobs, kohya config export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.datasets.kohya import KohyaOptions
from genfoundry.presenters.datasets import dataset_item_public, dataset_public
from genfoundry.presenters.jobs import job_public
from genfoundry.schemas import (
    CaptionRequest,
    DatasetCreated,
    DatasetFromUrls,
    DatasetItemPublic,
    DatasetItemUpdate,
    DatasetPublic,
    DeletedPublic,
    JobPublic,
    ListPublic,
)
from genfoundry.schemas.datasets import CaptionsEdit, CaptionsEdited, CaptionsReplace
from genfoundry.services.datasets import prepend_to_caption, replace_in_caption

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=201, response_model_exclude_none=True)
def create_dataset(
    services: ServicesDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="ZIP of images, with optional same-name .txt or metadata.jsonl")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    trigger_word: Annotated[str | None, Form(max_length=200)] = None,
) -> DatasetCreated:
    """Upload a ZIP: every image is checked, cleaned and stored; the report says what happened to each file."""
    dataset, report = services.datasets.upload_zip(
        owner_id=principal.user_id,
        name=name,
        upload=file.file,
        trigger_word=(trigger_word or "").strip() or None,
        filename=file.filename,
    )
    public = dataset_public(dataset, services.datasets.stats_of(dataset))
    return DatasetCreated(**public.model_dump(), report=report)


@router.post("/from-urls", status_code=202)
def create_dataset_from_urls(body: DatasetFromUrls, services: ServicesDep, principal: PrincipalDep) -> DatasetPublic:
    """Download images into a new dataset as a job; follow it at /v1/jobs/{job_id}."""
    dataset, _job = services.datasets.create_from_urls(
        owner_id=principal.user_id,
        name=body.name,
        urls=body.urls,
        trigger_word=(body.trigger_word or "").strip() or None,
    )
    return dataset_public(dataset, services.datasets.stats_of(dataset))


@router.get("")
def read_datasets(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListPublic[DatasetPublic]:
    page = services.datasets.list_datasets(owner_id=principal.user_id, limit=limit, after=after, with_stats=True)
    data = [dataset_public(dataset, page.stats[dataset.id]) for dataset in page.datasets]
    return ListPublic(data=data, has_more=page.has_more)


@router.get("/{dataset_id}")
def read_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep) -> DatasetPublic:
    return dataset_public(*services.datasets.get_with_stats(owner_id=principal.user_id, dataset_id=dataset_id))


@router.get("/{dataset_id}/items")
def read_dataset_items(
    dataset_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Literal["ok", "rejected", "duplicate", "skipped"] | None = None,
) -> ListPublic[DatasetItemPublic]:
    rows, has_more = services.datasets.list_items(
        owner_id=principal.user_id, dataset_id=dataset_id, limit=limit, after=after, status=status
    )
    return ListPublic(data=[dataset_item_public(row) for row in rows], has_more=has_more)


@router.get("/{dataset_id}/items/{item_id}/image", response_class=Response)
def read_dataset_item_image(dataset_id: str, item_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    data = services.datasets.item_image(owner_id=principal.user_id, dataset_id=dataset_id, item_id=item_id)
    media_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=media_type)


@router.patch("/{dataset_id}/items/{item_id}")
def update_dataset_item(
    dataset_id: str, item_id: str, body: DatasetItemUpdate, services: ServicesDep, principal: PrincipalDep
) -> DatasetItemPublic:
    """Set an item's caption (written to its .txt file too); an empty caption removes it."""
    item = services.datasets.update_caption(
        owner_id=principal.user_id, dataset_id=dataset_id, item_id=item_id, caption=body.caption
    )
    return dataset_item_public(item)


@router.post("/{dataset_id}/captions")
def edit_dataset_captions(
    dataset_id: str, body: CaptionsEdit, services: ServicesDep, principal: PrincipalDep
) -> CaptionsEdited:
    """Edit every caption at once: find and replace, or prepend a trigger word (their .txt files too)."""
    if isinstance(body, CaptionsReplace):
        rewrite = replace_in_caption(body.find, body.replace)
    else:
        rewrite = prepend_to_caption(body.text)
    items = services.datasets.edit_captions(owner_id=principal.user_id, dataset_id=dataset_id, rewrite=rewrite)
    return CaptionsEdited(updated=len(items), data=[dataset_item_public(item) for item in items])


@router.post("/{dataset_id}/caption", status_code=202)
def caption_dataset(dataset_id: str, body: CaptionRequest, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """Caption every image without a caption (all of them with `overwrite`), as a job."""
    job = services.datasets.start_captioning(
        owner_id=principal.user_id,
        dataset_id=dataset_id,
        model=body.model,
        prompt=body.prompt or body.task,
        trigger_word=body.trigger_word,
        overwrite=body.overwrite,
        batch_size=body.batch_size,
    )
    return job_public(job)


@router.get("/{dataset_id}/config", response_class=Response)
def read_dataset_config(
    dataset_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    format: Annotated[Literal["kohya"], Query()] = "kohya",
    resolution: Annotated[int | None, Query(description="default: from the images (see the file's comment)")] = None,
    batch_size: Annotated[int, Query()] = 1,
    num_repeats: Annotated[int, Query()] = 10,
    enable_bucket: bool = True,
    class_tokens: Annotated[str | None, Query(max_length=200)] = None,
    keep_tokens: Annotated[int, Query()] = 0,
    shuffle_caption: bool = False,
) -> Response:
    """kohya sd-scripts dataset TOML for this dataset's folder (`--dataset_config`)."""
    options = KohyaOptions(
        resolution=resolution,
        batch_size=batch_size,
        num_repeats=num_repeats,
        enable_bucket=enable_bucket,
        class_tokens=class_tokens,
        keep_tokens=keep_tokens,
        shuffle_caption=shuffle_caption,
    )
    text = services.datasets.kohya_config_for(owner_id=principal.user_id, dataset_id=dataset_id, options=options)
    return Response(text, media_type="application/toml")


@router.delete("/{dataset_id}")
def delete_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    services.datasets.delete(owner_id=principal.user_id, dataset_id=dataset_id)
    return DeletedPublic(id=dataset_id, object="dataset")
