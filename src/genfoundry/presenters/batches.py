"""Batches: OpenAI's batch object and list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from genfoundry.db.tables import Batch
from genfoundry.schemas.batches import (
    BatchErrorPublic,
    BatchErrorsPublic,
    BatchListPublic,
    BatchPublic,
    BatchRequestCounts,
)


def _unix(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return int((moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp())  # SQLite: UTC


def batch_public(batch: Batch) -> BatchPublic:
    errors = BatchErrorsPublic(data=[BatchErrorPublic(**error) for error in batch.errors]) if batch.errors else None
    return BatchPublic(
        id=batch.id,
        endpoint=batch.endpoint,
        errors=errors,
        input_file_id=batch.input_file_id,
        completion_window=batch.completion_window,
        status=batch.status,  # type: ignore[arg-type]
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        created_at=_unix(batch.created_at) or 0,
        in_progress_at=_unix(batch.in_progress_at),
        expires_at=_unix(batch.expires_at),
        finalizing_at=_unix(batch.finalizing_at),
        completed_at=_unix(batch.completed_at),
        failed_at=_unix(batch.failed_at),
        expired_at=_unix(batch.expired_at),
        cancelling_at=_unix(batch.cancelling_at),
        cancelled_at=_unix(batch.cancelled_at),
        request_counts=BatchRequestCounts(total=batch.total, completed=batch.completed, failed=batch.failed),
        metadata=batch.meta,
    )


def batch_list_public(batches: Sequence[Batch], *, has_more: bool) -> BatchListPublic:
    data = [batch_public(batch) for batch in batches]
    first, last = (data[0].id, data[-1].id) if data else (None, None)
    return BatchListPublic(data=data, has_more=has_more, first_id=first, last_id=last)
