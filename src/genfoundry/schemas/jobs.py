"""Jobs: their states, the job object and its events."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel


class JobStatus(StrEnum):
    """A job's life: queued → running → succeeded | failed | cancelled (running → queued again to resume)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobPublic(BaseModel):
    id: str
    object: Literal["job"] = "job"
    kind: str
    status: JobStatus
    created: int
    started: int | None
    finished: int | None
    progress: dict[str, int]
    result: dict[str, Any]
    error: str | None


class JobEventPublic(BaseModel):
    id: str
    object: Literal["job.event"] = "job.event"
    created_at: int
    type: str
    message: str
    data: dict[str, Any]
