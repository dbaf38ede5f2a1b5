"""Batches (`/v1/batches`, OpenAI's Batch API): a JSONL file of API requests run in the background as one job."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from genfoundry.schemas.common import ListPublic
from genfoundry.schemas.conversations import MAX_METADATA_KEYS, Metadata

MAX_BATCH_REQUESTS = 50_000  # OpenAI's cap on lines per batch

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]


def _few_keys(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is not None and len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata takes at most {MAX_METADATA_KEYS} keys, got {len(value)}")
    return value


class BatchCreate(BaseModel):
    """OpenAI's create-batch body; `endpoint` is checked against the endpoints a batch can run."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, max_length=64)
    endpoint: str = Field(min_length=1, max_length=60)
    completion_window: Literal["24h"]
    metadata: Annotated[Metadata | None, AfterValidator(_few_keys)] = None


class BatchRequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchErrorPublic(BaseModel):
    """A batch-level error (the batch failed as a whole; a line's error goes to the error file)."""

    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrorsPublic(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchErrorPublic]


class BatchPublic(BaseModel):
    """OpenAI's batch object; timestamps and file ids are absent until they happen (OpenAI's schema has no nulls
    there)."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrorsPublic | None = None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: BatchRequestCounts
    metadata: dict[str, str] | None = None


class BatchListPublic(ListPublic[BatchPublic]):
    """OpenAI's batch list: the page's first and last ids besides `has_more`."""

    first_id: str | None = None
    last_id: str | None = None
