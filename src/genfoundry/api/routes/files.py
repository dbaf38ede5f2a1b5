"""OpenAI-compatible files: a fine-tune upload (JSONL, or a ZIP of images) becomes a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.db.tables import Dataset
from genfoundry.errors import Invalid
from genfoundry.repo import datasets as datasets_repo
from genfoundry.schemas import DeletedPublic, FilePublic, ListPublic
from genfoundry.services.datasets import copy_upload, dataset_prefix

router = APIRouter(prefix="/v1/files", tags=["files"])

PURPOSES = ("fine-tune",)
ZIP_MAGIC = b"PK\x03\x04"


def file_public(dataset: Dataset) -> FilePublic:
    status = {"ready": "processed", "processing": "uploaded", "captioning": "processed"}.get(dataset.status, "error")
    return FilePublic(
        id=dataset.id,
        bytes=dataset.upload_bytes,
        created_at=int(dataset.created_at.timestamp()),
        filename=dataset.filename or dataset.name,
        purpose=dataset.purpose,
        status=status,  # type: ignore[arg-type]
        status_details=dataset.error,
    )


@router.post("")
async def create_file(
    services: ServicesDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="JSONL (prompt/completion, messages, or text/label) or a ZIP")],
    purpose: Annotated[str, Form()],
) -> FilePublic:
    """Validated on upload: a bad JSONL line is a 422 naming the line; a ZIP gets the dataset checks."""
    if purpose not in PURPOSES:
        raise Invalid(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
    filename = Path(file.filename or "upload").name[:255]

    def create() -> FilePublic:
        with services.datasets.scratch_dir() as scratch:
            target = Path(scratch) / "upload"
            copy_upload(file.file, target, limit=services.settings.datasets.max_zip_bytes, param="file")
            with target.open("rb") as handle:
                is_zip = handle.read(4) == ZIP_MAGIC
            if is_zip:
                dataset, _report = services.datasets.create_from_zip(
                    owner_id=principal.user_id, name=filename, zip_path=target, trigger_word=None, filename=filename
                )
            else:
                dataset = services.datasets.create_from_jsonl(
                    owner_id=principal.user_id, name=filename, path=target, filename=filename
                )
        return file_public(dataset)

    return await run_in_threadpool(create)


@router.get("")
async def read_files(
    services: ServicesDep,
    principal: PrincipalDep,
    purpose: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> ListPublic[FilePublic]:
    def load() -> ListPublic[FilePublic]:
        with services.sessions() as session:
            rows, has_more = datasets_repo.list_datasets(
                session=session, owner_id=principal.user_id, limit=limit, after=after, purpose=purpose
            )
            return ListPublic(data=[file_public(row) for row in rows], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{file_id}")
async def read_file(file_id: str, services: ServicesDep, principal: PrincipalDep) -> FilePublic:
    def load() -> FilePublic:
        with services.sessions() as session:
            return file_public(
                datasets_repo.require_dataset(session=session, owner_id=principal.user_id, dataset_id=file_id)
            )

    return await run_in_threadpool(load)


@router.get("/{file_id}/content", response_class=Response)
async def read_file_content(file_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """The JSONL of a text dataset as uploaded (image datasets: use /v1/datasets/{id}/items)."""

    def load() -> bytes:
        with services.sessions() as session:
            dataset = datasets_repo.require_dataset(session=session, owner_id=principal.user_id, dataset_id=file_id)
        if dataset.kind != "text":
            raise Invalid("only JSONL files have downloadable content; see /v1/datasets/{id}/items", param="file_id")
        return services.store.get_bytes(f"{dataset_prefix(dataset.id)}/data.jsonl")

    return Response(await run_in_threadpool(load), media_type="application/jsonl")


@router.delete("/{file_id}")
async def delete_file(file_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    await run_in_threadpool(lambda: services.datasets.delete(owner_id=principal.user_id, dataset_id=file_id))
    return DeletedPublic(id=file_id, object="file")
