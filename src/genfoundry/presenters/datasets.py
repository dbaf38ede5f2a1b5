"""Datasets and their items as /v1/datasets shows them."""

from __future__ import annotations

from typing import Any

from genfoundry.db.tables import Dataset, DatasetItem
from genfoundry.schemas import DatasetItemPublic, DatasetPublic


def dataset_public(dataset: Dataset, stats: dict[str, Any]) -> DatasetPublic:
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


def dataset_item_public(item: DatasetItem) -> DatasetItemPublic:
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
