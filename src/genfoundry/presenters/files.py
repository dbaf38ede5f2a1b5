"""Files: the OpenAI files API's view of a dataset (a fine-tune upload)."""

from __future__ import annotations

from genfoundry.db.tables import Dataset
from genfoundry.schemas import FilePublic

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
