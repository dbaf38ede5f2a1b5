"""Datasets and their items, scoped to an owner."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from genfoundry.db.tables import Dataset, DatasetItem
from genfoundry.errors import NotFound


def create_dataset(*, session: Session, **fields: Any) -> Dataset:
    dataset = Dataset(**fields)
    session.add(dataset)
    session.flush()
    return dataset


def get_dataset(*, session: Session, dataset_id: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.id == dataset_id))


def require_dataset(*, session: Session, owner_id: str, dataset_id: str, param: str | None = None) -> Dataset:
    dataset = get_dataset(session=session, dataset_id=dataset_id)
    if dataset is None or dataset.owner_id != owner_id:
        raise NotFound(f"No dataset with id '{dataset_id}'", param=param)
    return dataset


def find_dataset_by_name(*, session: Session, owner_id: str, name: str) -> Dataset | None:
    """The owner's newest dataset called `name` (names are what the seed systems' APIs address datasets by)."""
    query = select(Dataset).where(Dataset.owner_id == owner_id, Dataset.name == name)
    return session.scalar(query.order_by(Dataset.seq.desc()).limit(1))


def list_datasets(
    *, session: Session, owner_id: str, limit: int, after: str | None = None, purpose: str | None = None
) -> tuple[list[Dataset], bool]:
    """Newest first; `after` is the id of the last item of the previous page."""
    query = select(Dataset).where(Dataset.owner_id == owner_id)
    if after is not None:
        cursor = require_dataset(session=session, owner_id=owner_id, dataset_id=after, param="after")
        query = query.where(Dataset.seq < cursor.seq)
    if purpose is not None:
        query = query.where(Dataset.purpose == purpose)
    rows = list(session.scalars(query.order_by(Dataset.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def claim_dataset(*, session: Session, dataset_id: str, status: str, job_id: str) -> bool:
    """Move a ready dataset to `status` for `job_id` atomically; False when it was not ready (a race lost)."""
    result = session.execute(
        update(Dataset)
        .where(Dataset.id == dataset_id, Dataset.status == "ready")
        .values(status=status, active_job_id=job_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_items(*, session: Session, items: list[DatasetItem]) -> None:
    session.add_all(items)
    session.flush()


def list_items(
    *,
    session: Session,
    dataset_id: str,
    limit: int | None = None,
    after: str | None = None,
    status: str | None = None,
) -> tuple[list[DatasetItem], bool]:
    """In ingestion order; `after` is an item id."""
    query = select(DatasetItem).where(DatasetItem.dataset_id == dataset_id)
    if after is not None:
        cursor = session.scalar(
            select(DatasetItem).where(DatasetItem.id == after, DatasetItem.dataset_id == dataset_id)
        )
        if cursor is None:
            raise NotFound(f"No item with id '{after}' in this dataset", param="after")
        query = query.where(DatasetItem.seq > cursor.seq)
    if status is not None:
        query = query.where(DatasetItem.status == status)
    query = query.order_by(DatasetItem.seq)
    if limit is None:
        return list(session.scalars(query)), False
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def accepted_item_shapes(*, session: Session, dataset_ids: Collection[str]) -> list[tuple[str, int, int, bool]]:
    """(dataset id, width, height, has a caption) of every accepted item of these datasets, in one query."""
    if not dataset_ids:
        return []
    captioned = and_(DatasetItem.caption.is_not(None), DatasetItem.caption != "")
    rows = session.execute(
        select(DatasetItem.dataset_id, DatasetItem.width, DatasetItem.height, captioned).where(
            DatasetItem.dataset_id.in_(dataset_ids), DatasetItem.status == "ok"
        )
    )
    return [(dataset_id, width or 0, height or 0, bool(has_caption)) for dataset_id, width, height, has_caption in rows]


def require_item(*, session: Session, dataset_id: str, item_id: str) -> DatasetItem:
    item = session.scalar(select(DatasetItem).where(DatasetItem.id == item_id, DatasetItem.dataset_id == dataset_id))
    if item is None:
        raise NotFound(f"No item with id '{item_id}' in this dataset")
    return item


def count_items(*, session: Session, dataset_id: str) -> dict[str, int]:
    rows = session.execute(
        select(DatasetItem.status, func.count())
        .where(DatasetItem.dataset_id == dataset_id)
        .group_by(DatasetItem.status)
    )
    return {status: count for status, count in rows.tuples()}


def delete_dataset(*, session: Session, dataset: Dataset) -> None:
    session.execute(delete(DatasetItem).where(DatasetItem.dataset_id == dataset.id))
    session.delete(dataset)
