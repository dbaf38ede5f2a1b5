"""Jobs and their events. Reads are scoped to an owner; the runner uses the unscoped ones.

State changes are conditional UPDATEs whose row count says whether they won: a claim wins only on a queued
row, and a running job's writes carry its attempt and worker id, so a writer that lost the job changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, CursorResult, and_, func, select, update
from sqlalchemy.orm import Session

from genfoundry.db.tables import Job, JobEvent, utcnow
from genfoundry.errors import Invalid, NotFound
from genfoundry.schemas.jobs import ACTIVE_STATUSES, JobStatus


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


def list_events(
    *, session: Session, job_id: str, after: int | None, limit: int, types: tuple[str, ...] | None = None
) -> tuple[list[JobEvent], bool]:
    """Oldest first from `after` (an event seq); returns (page, has_more)."""
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after is not None:
        query = query.where(JobEvent.seq > after)
    if types is not None:
        query = query.where(JobEvent.type.in_(types))
    rows = list(session.scalars(query.order_by(JobEvent.seq).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def is_job_event(*, session: Session, job_id: str, seq: int) -> bool:
    return session.scalar(select(JobEvent.seq).where(JobEvent.seq == seq, JobEvent.job_id == job_id)) is not None


def check_event_cursor(*, session: Session, job_id: str, seq: int | None, param: str = "after") -> None:
    """A cursor must name one of this job's events; anything else is Invalid (not an empty page)."""
    if seq is not None and not is_job_event(session=session, job_id=job_id, seq=seq):
        raise Invalid(f"job {job_id} has no event ev_{seq}", param=param)


def latest_event(*, session: Session, job_id: str, type: str) -> JobEvent | None:
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == type)
    return session.scalar(query.order_by(JobEvent.seq.desc()).limit(1))


def newest_events(
    *, session: Session, job_id: str, type: str, limit: int, before: int | None = None
) -> tuple[list[JobEvent], bool]:
    """Newest first, older than `before` (an event seq); returns (page, has_more)."""
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == type)
    if before is not None:
        query = query.where(JobEvent.seq < before)
    rows = list(session.scalars(query.order_by(JobEvent.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def _changed(session: Session, statement: Any) -> bool:
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return result.rowcount == 1


def _held(job_id: str, attempt: int, worker_id: str | None) -> ColumnElement[bool]:
    """The row is still this run's: running, same attempt, same worker (None: a row an older runner left)."""
    worker = Job.worker_id.is_(None) if worker_id is None else Job.worker_id == worker_id
    return and_(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.attempts == attempt, worker)


def queued_jobs(
    *, session: Session, kinds: list[str], limit: int, only: list[str] | None = None
) -> list[tuple[str, str]]:
    """(id, kind) of the oldest queued jobs of `kinds` nobody asked to cancel; `only` narrows to those ids."""
    query = select(Job.id, Job.kind).where(
        Job.status == JobStatus.QUEUED, Job.kind.in_(kinds), Job.cancel_requested.is_(False)
    )
    if only is not None:
        query = query.where(Job.id.in_(only))
    return [(row.id, row.kind) for row in session.execute(query.order_by(Job.seq).limit(limit))]


def claim_job(*, session: Session, job_id: str, worker_id: str) -> int | None:
    """queued → running for `worker_id`; the new attempt number, or None when another worker won."""
    now = utcnow()
    won = _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.cancel_requested.is_(False))
        .values(
            status=JobStatus.RUNNING,
            worker_id=worker_id,
            attempts=Job.attempts + 1,
            heartbeat_at=now,
            started_at=func.coalesce(Job.started_at, now),
        ),
    )
    if not won:
        return None
    attempt = session.scalar(select(Job.attempts).where(Job.id == job_id))
    add_event(
        session=session,
        job_id=job_id,
        type="status",
        message=JobStatus.RUNNING,
        data={"attempt": attempt, "worker": worker_id},
    )
    return attempt


def touch_job(
    *, session: Session, job_id: str, attempt: int, worker_id: str, step: int | None = None, total: int | None = None
) -> bool:
    """Heartbeat (and progress when given); False when the run no longer holds the job."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if step is not None:
        values["progress_step"] = step
    if total is not None:
        values["progress_total"] = total
    return _changed(session, update(Job).where(_held(job_id, attempt, worker_id)).values(**values))


def touch_held(*, session: Session, worker_id: str, job_ids: list[str]) -> None:
    """Heartbeat, from the runner, of the jobs it holds and whose processes are alive (starting ones too)."""
    session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.RUNNING, Job.worker_id == worker_id)
        .values(heartbeat_at=utcnow())
    )


def set_checkpoint(*, session: Session, job_id: str, attempt: int, worker_id: str, checkpoint: str) -> bool:
    return _changed(session, update(Job).where(_held(job_id, attempt, worker_id)).values(checkpoint=checkpoint))


def run_state(*, session: Session, job_id: str, attempt: int, worker_id: str) -> tuple[bool, bool]:
    """(the run still holds the job, cancel was requested)."""
    row = session.execute(
        select(Job.status, Job.attempts, Job.worker_id, Job.cancel_requested).where(Job.id == job_id)
    ).first()
    if row is None:
        return False, True
    held = row.status == JobStatus.RUNNING and row.attempts == attempt and row.worker_id == worker_id
    return held, bool(row.cancel_requested)


def finish_run(
    *,
    session: Session,
    job_id: str,
    attempt: int,
    worker_id: str | None,
    status: str,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """running → a final status, with its event in the same transaction; False when the run lost the job."""
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
    if result is not None:
        values["result"] = result
    if not _changed(session, update(Job).where(_held(job_id, attempt, worker_id)).values(**values)):
        return False
    add_event(session=session, job_id=job_id, type="status", message=status, data={"error": error} if error else {})
    return True


def requeue_run(
    *, session: Session, job_id: str, attempt: int, worker_id: str | None, reason: str, refund: bool = False
) -> bool:
    """running → queued, to resume from the last checkpoint; `refund` gives the attempt back (not the job's fault).

    A refunded attempt number comes back with another worker id, so (attempt, worker_id) still names one run.
    """
    values: dict[str, Any] = {
        "status": JobStatus.QUEUED,
        "worker_id": None,
        "heartbeat_at": None,
        "error": reason,
        "resume_from": Job.checkpoint,
    }
    if refund:
        values["attempts"] = Job.attempts - 1
    if not _changed(session, update(Job).where(_held(job_id, attempt, worker_id)).values(**values)):
        return False
    checkpoint = session.scalar(select(Job.checkpoint).where(Job.id == job_id))
    add_event(
        session=session,
        job_id=job_id,
        type="status",
        message=JobStatus.QUEUED,
        data={"reason": reason, "attempt": attempt, "resume_from": checkpoint},
    )
    return True


def request_cancel(*, session: Session, job_id: str) -> bool:
    """Raise the cancel flag of an active job; False when the job already ended."""
    return _changed(
        session,
        update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES)).values(cancel_requested=True),
    )


def cancel_queued(*, session: Session, job_id: str) -> bool:
    """queued → cancelled (no worker holds it yet)."""
    if not _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, finished_at=utcnow()),
    ):
        return False
    add_event(session=session, job_id=job_id, type="status", message=JobStatus.CANCELLED)
    return True


def reopen_job(*, session: Session, job_id: str, extra_attempts: int) -> bool:
    """cancelled | failed → queued, to resume from its last checkpoint with `extra_attempts` more attempts."""
    reopened = _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status.in_((JobStatus.CANCELLED, JobStatus.FAILED)))
        .values(
            status=JobStatus.QUEUED,
            cancel_requested=False,
            error=None,
            finished_at=None,
            worker_id=None,
            heartbeat_at=None,
            resume_from=Job.checkpoint,
            max_attempts=Job.attempts + extra_attempts,
        ),
    )
    if reopened:
        checkpoint = session.scalar(select(Job.checkpoint).where(Job.id == job_id))
        add_event(
            session=session,
            job_id=job_id,
            type="status",
            message=JobStatus.QUEUED,
            data={"reason": "resumed", "resume_from": checkpoint},
        )
    return reopened


def cancel_requested_ids(*, session: Session, job_ids: list[str]) -> set[str]:
    return set(session.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.cancel_requested.is_(True))))


def active_jobs(*, session: Session, owner_id: str) -> list[Job]:
    """An owner's queued and running jobs, oldest first."""
    query = select(Job).where(Job.owner_id == owner_id, Job.status.in_(ACTIVE_STATUSES))
    return list(session.scalars(query.order_by(Job.seq)))


def running_jobs(*, session: Session) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status == JobStatus.RUNNING).order_by(Job.seq)))


def list_jobs(
    *, session: Session, owner_id: str, kinds: tuple[str, ...] | None, limit: int, after: str | None = None
) -> tuple[list[Job], bool]:
    """An owner's jobs (of `kinds`, or all), newest first; `after` is the id of the last job of the previous page."""
    query = select(Job).where(Job.owner_id == owner_id)
    if kinds is not None:
        query = query.where(Job.kind.in_(kinds))
    if after is not None:
        cursor = require_job(session=session, owner_id=owner_id, job_id=after)
        query = query.where(Job.seq < cursor.seq)
    rows = list(session.scalars(query.order_by(Job.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def tail_events(*, session: Session, job_id: str, types: tuple[str, ...], limit: int) -> list[JobEvent]:
    """The last `limit` events of the given types, oldest first."""
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type.in_(types))
    rows = list(session.scalars(query.order_by(JobEvent.seq.desc()).limit(limit)))
    return rows[::-1]
