"""Jobs and their events. Reads are scoped to an owner; the runner uses the unscoped ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from genfoundry.db.tables import Job, JobEvent, utcnow
from genfoundry.errors import NotFound

ACTIVE_STATUSES = ("queued", "running")


def create_job(*, session: Session, **fields: Any) -> Job:
    job = Job(**fields)
    session.add(job)
    session.flush()
    return job


def get_job(*, session: Session, job_id: str) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id))


def require_job(*, session: Session, owner_id: str, job_id: str) -> Job:
    job = get_job(session=session, job_id=job_id)
    if job is None or job.owner_id != owner_id:
        raise NotFound(f"No job with id '{job_id}'")
    return job


def add_event(
    *, session: Session, job_id: str, type: str, message: str = "", data: dict[str, Any] | None = None
) -> None:
    session.add(JobEvent(job_id=job_id, type=type, message=message, data=data or {}))


def list_events(*, session: Session, job_id: str, after: int | None, limit: int) -> tuple[list[JobEvent], bool]:
    """Oldest first from `after` (an event seq); returns (page, has_more)."""
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after is not None:
        query = query.where(JobEvent.seq > after)
    rows = list(session.scalars(query.order_by(JobEvent.seq).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def fail_orphaned_jobs(*, session: Session, reason: str) -> list[str]:
    """Jobs a previous server process left queued or running: failed with `reason`, never left 'running'."""
    ids = list(session.scalars(select(Job.id).where(Job.status.in_(ACTIVE_STATUSES))))
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids)).values(status="failed", error=reason, finished_at=utcnow()))
    return ids
