"""Batches and their lines' results, scoped to an owner: another user's batch does not exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genfoundry.db.tables import Batch, BatchLine, utcnow
from genfoundry.errors import NotFound


def require_batch(*, session: Session, owner_id: str, batch_id: str) -> Batch:
    batch = session.scalar(select(Batch).where(Batch.id == batch_id))
    if batch is None or batch.owner_id != owner_id:
        raise NotFound(f"No batch with id '{batch_id}'", param="batch_id")
    return batch


def get_batch(*, session: Session, batch_id: str) -> Batch:
    """A batch by id, for its own job (no owner to scope by)."""
    batch = session.scalar(select(Batch).where(Batch.id == batch_id))
    if batch is None:
        raise NotFound(f"No batch with id '{batch_id}'", param="batch_id")
    return batch


def set_files(*, session: Session, batch_id: str, output_file_id: str | None, error_file_id: str | None) -> None:
    values = {"output_file_id": output_file_id, "error_file_id": error_file_id}
    session.execute(update(Batch).where(Batch.id == batch_id).values(values))


def batch_of_job(*, session: Session, job_id: str) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.job_id == job_id))


def list_batches(*, session: Session, owner_id: str, limit: int, after: str | None = None) -> tuple[list[Batch], bool]:
    """Newest first; `after` is the id of the last batch of the previous page. Returns (page, has_more)."""
    query = select(Batch).where(Batch.owner_id == owner_id)
    if after is not None:
        cursor = require_batch(session=session, owner_id=owner_id, batch_id=after)
        query = query.where(Batch.seq < cursor.seq)
    rows = list(session.scalars(query.order_by(Batch.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def set_status(*, session: Session, batch_id: str, status: str, from_statuses: tuple[str, ...]) -> bool:
    """Move a batch in one of `from_statuses` to `status`, stamping `<status>_at` now; True when it moved."""
    query = update(Batch).where(Batch.id == batch_id, Batch.status.in_(from_statuses))
    moved = session.execute(query.values(status=status, **{f"{status}_at": utcnow()}))
    return bool(getattr(moved, "rowcount", 0))


def done_lines(*, session: Session, batch_id: str) -> set[int]:
    return set(session.scalars(select(BatchLine.line).where(BatchLine.batch_id == batch_id)))


def add_line(*, session: Session, batch_id: str, line: int, ok: bool, record: dict[str, Any]) -> None:
    """Record one line's result and count it; a line already recorded (a resumed run's) is left as it was."""
    try:
        with session.begin_nested():
            session.add(BatchLine(batch_id=batch_id, line=line, ok=ok, record=record))
    except IntegrityError:
        return
    counter = Batch.completed if ok else Batch.failed
    session.execute(update(Batch).where(Batch.id == batch_id).values({counter: counter + 1}))


def line_records(*, session: Session, batch_id: str, ok: bool) -> list[dict[str, Any]]:
    """The recorded lines that go to the output file (`ok`) or the error file, in input order."""
    query = select(BatchLine.record).where(BatchLine.batch_id == batch_id, BatchLine.ok == ok)
    return list(session.scalars(query.order_by(BatchLine.line)))
