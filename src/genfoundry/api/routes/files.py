"""OpenAI-compatible files: a fine-tune upload (JSONL, or a ZIP of images) becomes a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.errors import Invalid
from genfoundry.presenters.files import file_list_public, file_public
from genfoundry.schemas import DeletedPublic, FilePublic
from genfoundry.schemas.datasets import FileListPublic

router = APIRouter(prefix="/v1/files", tags=["files"])

PURPOSES = ("fine-tune", "batch")  # batch: a /v1/batches input, kept as uploaded (batch_output files are ours)


@router.post("")
def create_file(
    services: ServicesDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="JSONL (prompt/completion, messages, or text/label) or a ZIP")],
    purpose: Annotated[str, Form()],
) -> FilePublic:
    """Validated on upload: a bad JSONL line is a 422 naming the line; a ZIP gets the dataset checks. A `batch`
    file (a /v1/batches input) is kept as uploaded: its lines are checked one by one when the batch runs."""
    if purpose not in PURPOSES:
        raise Invalid(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
    filename = Path(file.filename or "upload").name[:255]
    dataset = services.datasets.upload_file(
        owner_id=principal.user_id, upload=file.file, filename=filename, purpose=purpose
    )
    return file_public(dataset)


@router.get("")
def read_files(
    services: ServicesDep,
    principal: PrincipalDep,
    purpose: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> FileListPublic:
    page = services.datasets.list_datasets(owner_id=principal.user_id, limit=limit, after=after, purpose=purpose)
    return file_list_public(page.datasets, has_more=page.has_more)


@router.get("/{file_id}")
def read_file(file_id: str, services: ServicesDep, principal: PrincipalDep) -> FilePublic:
    return file_public(services.datasets.get(owner_id=principal.user_id, dataset_id=file_id))


@router.get("/{file_id}/content", response_class=Response)
def read_file_content(file_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """The JSONL of a text dataset as uploaded (image datasets: use /v1/datasets/{id}/items)."""
    data = services.datasets.jsonl_content(owner_id=principal.user_id, dataset_id=file_id)
    return Response(data, media_type="application/jsonl")


@router.delete("/{file_id}")
def delete_file(file_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    services.datasets.delete(owner_id=principal.user_id, dataset_id=file_id)
    return DeletedPublic(id=file_id, object="file")
