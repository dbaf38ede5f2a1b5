"""Datasets: ZIP uploads, image URLs, items and captions, captioning jobs, kohya config export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.datasets.kohya import KohyaOptions
from genfoundry.db.tables import Dataset, DatasetItem
from genfoundry.presenters.jobs import job_public
from genfoundry.repo import datasets as datasets_repo
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
from genfoundry.services import Services
from genfoundry.services.datasets import copy_upload

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


def dataset_public(services: Services, dataset: Dataset) -> DatasetPublic:
    with services.sessions() as session:
        stats = services.datasets.stats(session, dataset)
    return DatasetPublic(
        id=dataset.id,
        name=dataset.name,
        kind=dataset.kind,
        status=dataset.status,
        created=int(dataset.created_at.timestamp()),
        trigger_word=dataset.trigger_word,
        job_id=dataset.active_job_id,
        error=dataset.error,
        stats=stats,
    )


def item_public(item: DatasetItem) -> DatasetItemPublic:
    return DatasetItemPublic(
        id=item.id,
        source=item.source,
        status=item.status,
        reason=item.reason,
        sha256=item.sha256,
        width=item.width,
        height=item.height,
        caption=item.caption,
        bytes=item.bytes,
        duplicate_of=item.duplicate_of,
    )


@router.post("", status_code=201, response_model_exclude_none=True)
async def create_dataset(
    services: ServicesDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="ZIP of images, with optional same-name .txt or metadata.jsonl")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    trigger_word: Annotated[str | None, Form(max_length=200)] = None,
) -> DatasetCreated:
    """Upload a ZIP: every image is checked, cleaned and stored; the report says what happened to each file."""

    def create() -> DatasetCreated:
        with services.datasets.scratch_dir() as scratch:
            target = Path(scratch) / "upload.zip"
            copy_upload(file.file, target, limit=services.settings.datasets.max_zip_bytes, param="file")
            dataset, report = services.datasets.create_from_zip(
                owner_id=principal.user_id,
                name=name,
                zip_path=target,
                trigger_word=(trigger_word or "").strip() or None,
                filename=file.filename,
            )
        return DatasetCreated(**dataset_public(services, dataset).model_dump(), report=report)

    return await run_in_threadpool(create)


@router.post("/from-urls", status_code=202)
async def create_dataset_from_urls(
    body: DatasetFromUrls, services: ServicesDep, principal: PrincipalDep
) -> DatasetPublic:
    """Download images into a new dataset as a job; follow it at /v1/jobs/{job_id}."""

    def create() -> DatasetPublic:
        dataset, _job = services.datasets.create_from_urls(
            owner_id=principal.user_id,
            name=body.name,
            urls=body.urls,
            trigger_word=(body.trigger_word or "").strip() or None,
        )
        return dataset_public(services, dataset)

    return await run_in_threadpool(create)


@router.get("")
async def read_datasets(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListPublic[DatasetPublic]:
    def load() -> ListPublic[DatasetPublic]:
        with services.sessions() as session:
            rows, has_more = datasets_repo.list_datasets(
                session=session, owner_id=principal.user_id, limit=limit, after=after
            )
        return ListPublic(data=[dataset_public(services, row) for row in rows], has_more=has_more)

    return await run_in_threadpool(load)


def _dataset(services: Services, owner_id: str, dataset_id: str) -> Dataset:
    with services.sessions() as session:
        return datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)


@router.get("/{dataset_id}")
async def read_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep) -> DatasetPublic:
    return await run_in_threadpool(lambda: dataset_public(services, _dataset(services, principal.user_id, dataset_id)))


@router.get("/{dataset_id}/items")
async def read_dataset_items(
    dataset_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Literal["ok", "rejected", "duplicate", "skipped"] | None = None,
) -> ListPublic[DatasetItemPublic]:
    def load() -> ListPublic[DatasetItemPublic]:
        with services.sessions() as session:
            datasets_repo.require_dataset(session=session, owner_id=principal.user_id, dataset_id=dataset_id)
            rows, has_more = datasets_repo.list_items(
                session=session, dataset_id=dataset_id, limit=limit, after=after, status=status
            )
            return ListPublic(data=[item_public(row) for row in rows], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{dataset_id}/items/{item_id}/image", response_class=Response)
async def read_dataset_item_image(
    dataset_id: str, item_id: str, services: ServicesDep, principal: PrincipalDep
) -> Response:
    def load() -> bytes:
        with services.sessions() as session:
            datasets_repo.require_dataset(session=session, owner_id=principal.user_id, dataset_id=dataset_id)
            item = datasets_repo.require_item(session=session, dataset_id=dataset_id, item_id=item_id)
        return services.datasets.item_image(dataset_id, item)

    data = await run_in_threadpool(load)
    media_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=media_type)


@router.patch("/{dataset_id}/items/{item_id}")
async def update_dataset_item(
    dataset_id: str, item_id: str, body: DatasetItemUpdate, services: ServicesDep, principal: PrincipalDep
) -> DatasetItemPublic:
    """Set an item's caption (written to its .txt file too); an empty caption removes it."""
    item = await run_in_threadpool(
        lambda: services.datasets.update_caption(
            owner_id=principal.user_id, dataset_id=dataset_id, item_id=item_id, caption=body.caption
        )
    )
    return item_public(item)


@router.post("/{dataset_id}/caption", status_code=202)
async def caption_dataset(
    dataset_id: str, body: CaptionRequest, services: ServicesDep, principal: PrincipalDep
) -> JobPublic:
    """Caption every image without a caption (all of them with `overwrite`), as a job."""
    job = await run_in_threadpool(
        lambda: services.datasets.start_captioning(
            owner_id=principal.user_id,
            dataset_id=dataset_id,
            model=body.model,
            prompt=body.prompt or body.task,
            trigger_word=body.trigger_word,
            overwrite=body.overwrite,
            batch_size=body.batch_size,
        )
    )
    return job_public(job)


@router.get("/{dataset_id}/config", response_class=Response)
async def read_dataset_config(
    dataset_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    format: Annotated[Literal["kohya"], Query()] = "kohya",
    resolution: Annotated[int, Query()] = 1024,
    batch_size: Annotated[int, Query()] = 1,
    num_repeats: Annotated[int, Query()] = 10,
    enable_bucket: bool = True,
    class_tokens: Annotated[str | None, Query(max_length=200)] = None,
    keep_tokens: Annotated[int, Query()] = 0,
    shuffle_caption: bool = False,
) -> Response:
    """kohya sd-scripts dataset TOML for this dataset's folder (`--dataset_config`)."""

    def render() -> str:
        dataset = _dataset(services, principal.user_id, dataset_id)
        options = KohyaOptions(
            resolution=resolution,
            batch_size=batch_size,
            num_repeats=num_repeats,
            enable_bucket=enable_bucket,
            class_tokens=class_tokens if class_tokens is not None else dataset.trigger_word,
            keep_tokens=keep_tokens,
            shuffle_caption=shuffle_caption,
        )
        return services.datasets.kohya_config(dataset, options)

    return Response(await run_in_threadpool(render), media_type="application/toml")


@router.delete("/{dataset_id}")
async def delete_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    await run_in_threadpool(lambda: services.datasets.delete(owner_id=principal.user_id, dataset_id=dataset_id))
    return DeletedPublic(id=dataset_id, object="dataset")
