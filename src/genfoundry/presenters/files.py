"""Files: the OpenAI files API's view of a dataset (a fine-tune upload)."""

from __future__ import annotations

from collections.abc import Sequence

from genfoundry.db.tables import Dataset
from genfoundry.schemas import FilePublic
from genfoundry.schemas.datasets import FileListPublic

# A dataset's status among OpenAI's file statuses.
_FILE_STATUS = {"ready": "processed", "processing": "uploaded", "captioning": "processed"}


def file_public(dataset: Dataset) -> FilePublic:
    return FilePublic(
        id=dataset.id,
        bytes=dataset.upload_bytes,
        created_at=int(dataset.created_at.timestamp()),
        filename=dataset.filename or dataset.name,
        purpose=dataset.purpose,
        status=_FILE_STATUS.get(dataset.status, "error"),  # type: ignore[arg-type]
        status_details=dataset.error,
    )


def file_list_public(datasets: Sequence[Dataset], *, has_more: bool) -> FileListPublic:
    files = [file_public(dataset) for dataset in datasets]
    first, last = (files[0].id, files[-1].id) if files else (None, None)
    return FileListPublic(data=files, has_more=has_more, first_id=first, last_id=last)
