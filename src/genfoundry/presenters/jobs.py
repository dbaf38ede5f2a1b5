"""Jobs and their events as the API shows them; event ids (`ev_<seq>`) as cursors."""

from __future__ import annotations

from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Invalid
from genfoundry.schemas import JobEventPublic, JobPublic
from genfoundry.schemas.jobs import JobStatus


def job_public(job: Job) -> JobPublic:
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=JobStatus(job.status),
        created=int(job.created_at.timestamp()),
        started=int(job.started_at.timestamp()) if job.started_at else None,
        finished=int(job.finished_at.timestamp()) if job.finished_at else None,
        progress={"step": job.progress_step, "total": job.progress_total},
        result=job.result,
        error=job.error,
    )


def job_event_public(event: JobEvent) -> JobEventPublic:
    return JobEventPublic(
        id=event_id(event),
        created_at=int(event.created_at.timestamp()),
        type=event.type,
        message=event.message,
        data=event.data,
    )


def event_id(event: JobEvent) -> str:
    return f"ev_{event.seq}"


def parse_event_id(value: str | None, *, param: str = "after") -> int | None:
    """`ev_<seq>` → seq, for the `after` cursor of event lists."""
    if value is None:
        return None
    if not value.startswith("ev_") or not value[3:].isdigit() or len(value) > 23:
        raise Invalid(f"unknown event id {value!r}", param=param)
    return int(value[3:])


def event_cursor(after: str | None, last_event_id: str | None) -> tuple[int | None, str]:
    """The stream's starting point and the parameter it came from: a reconnecting client's `Last-Event-ID` header
    wins over `after`."""
    if last_event_id:
        return parse_event_id(last_event_id, param="Last-Event-ID"), "Last-Event-ID"
    return parse_event_id(after), "after"
