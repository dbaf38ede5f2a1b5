"""Jobs (dataset downloads, captioning): status, progress, events, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Conflict, Invalid
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas import JobEventPublic, JobPublic, ListPublic

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def job_public(job: Job) -> JobPublic:
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=job.status,
        created=int(job.created_at.timestamp()),
        started=int(job.started_at.timestamp()) if job.started_at else None,
        finished=int(job.finished_at.timestamp()) if job.finished_at else None,
        progress={"step": job.progress_step, "total": job.progress_total},
        result=job.result,
        error=job.error,
    )


def parse_event_id(event_id: str | None) -> int | None:
    """`ev_<seq>` → seq, for the `after` cursor of event lists."""
    if event_id is None:
        return None
    if not event_id.startswith("ev_") or not event_id[3:].isdigit():
        raise Invalid(f"unknown event id {event_id!r}", param="after")
    return int(event_id[3:])


def event_public(event: JobEvent) -> JobEventPublic:
    return JobEventPublic(
        id=f"ev_{event.seq}",
        created_at=int(event.created_at.timestamp()),
        type=event.type,
        message=event.message,
        data=event.data,
    )


@router.get("/{job_id}")
async def read_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    def load() -> JobPublic:
        with services.sessions() as session:
            return job_public(jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id))

    return await run_in_threadpool(load)


@router.get("/{job_id}/events")
async def read_job_events(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ListPublic[JobEventPublic]:
    """Oldest first; `after` is an event id from a previous page."""
    after_seq = parse_event_id(after)

    def load() -> ListPublic[JobEventPublic]:
        with services.sessions() as session:
            jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id)
            events, has_more = jobs_repo.list_events(session=session, job_id=job_id, after=after_seq, limit=limit)
            return ListPublic(data=[event_public(event) for event in events], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{job_id}/log", response_class=PlainTextResponse)
async def read_job_log(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    tail: Annotated[int, Query(ge=1, le=10000)] = 10,
) -> PlainTextResponse:
    """The job's last `tail` log and status lines as plain text, one per line."""

    def load() -> str:
        with services.sessions() as session:
            jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id)
            events = jobs_repo.tail_events(session=session, job_id=job_id, types=("log", "status"), limit=tail)
        return "".join(f"{event.created_at:%Y-%m-%d %H:%M:%S} {event.message}\n" for event in events)

    return PlainTextResponse(await run_in_threadpool(load))


@router.post("/{job_id}/cancel")
async def cancel_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """Stops the job at its next step boundary; a finished job cannot be cancelled (409)."""

    def cancel() -> JobPublic:
        with services.sessions() as session:
            job = jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id)
            if job.status not in jobs_repo.ACTIVE_STATUSES:
                raise Conflict(f"job {job_id} is already {job.status}")
            services.jobs.cancel(job_id)
            return job_public(job)

    return await run_in_threadpool(cancel)
