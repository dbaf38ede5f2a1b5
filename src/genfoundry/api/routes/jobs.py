"""Jobs of every kind (dataset downloads, captioning, training): list, status, events (pages or SSE), log,
cancel, resume."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.sse import stream_job_events
from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Conflict, Invalid
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas import JobEventPublic, JobPublic, ListPublic
from genfoundry.schemas.jobs import ACTIVE_STATUSES, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


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


def parse_event_id(event_id: str | None, *, param: str = "after") -> int | None:
    """`ev_<seq>` → seq, for the `after` cursor of event lists."""
    if event_id is None:
        return None
    if not event_id.startswith("ev_") or not event_id[3:].isdigit() or len(event_id) > 23:
        raise Invalid(f"unknown event id {event_id!r}", param=param)
    return int(event_id[3:])


def event_cursor(after: str | None, last_event_id: str | None) -> tuple[int | None, str]:
    """The stream's starting point: the `Last-Event-ID` header of a reconnecting client wins over `after`."""
    if last_event_id:
        return parse_event_id(last_event_id, param="Last-Event-ID"), "Last-Event-ID"
    return parse_event_id(after), "after"


def event_public(event: JobEvent) -> JobEventPublic:
    return JobEventPublic(
        id=f"ev_{event.seq}",
        created_at=int(event.created_at.timestamp()),
        type=event.type,
        message=event.message,
        data=event.data,
    )


@router.get("")
async def read_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    kind: Annotated[str | None, Query(max_length=40)] = None,
) -> ListPublic[JobPublic]:
    """The caller's jobs, newest first; `after` is the last id of the previous page."""

    def load() -> ListPublic[JobPublic]:
        with services.sessions() as session:
            rows, has_more = jobs_repo.list_jobs(
                session=session,
                owner_id=principal.user_id,
                kinds=(kind,) if kind else None,
                limit=limit,
                after=after,
            )
            return ListPublic(data=[job_public(row) for row in rows], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{job_id}")
async def read_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    def load() -> JobPublic:
        with services.sessions() as session:
            return job_public(jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id))

    return await run_in_threadpool(load)


@router.get("/{job_id}/events", response_model=None)
async def read_job_events(
    request: Request,
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    stream: bool = False,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
) -> ListPublic[JobEventPublic] | StreamingResponse:
    """Oldest first; `after` is an event id from a previous page. `stream=true`: Server-Sent Events that follow
    the job (replaying from `Last-Event-ID`) and end with `data: [DONE]`."""
    after_seq, param = event_cursor(after, last_event_id)

    def load() -> ListPublic[JobEventPublic]:
        with services.sessions() as session:
            jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id)
            jobs_repo.check_event_cursor(session=session, job_id=job_id, seq=after_seq, param=param)
            if stream:
                return ListPublic(data=[])
            events, has_more = jobs_repo.list_events(session=session, job_id=job_id, after=after_seq, limit=limit)
            return ListPublic(data=[event_public(event) for event in events], has_more=has_more)

    page = await run_in_threadpool(load)
    if not stream:
        return page
    return stream_job_events(
        request,
        sessions=services.sessions,
        job_id=job_id,
        after=after_seq,
        render=lambda event: event_public(event).model_dump(),
        event_name=lambda event: event.type,
    )


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
            if job.status not in ACTIVE_STATUSES:
                raise Conflict(f"job {job_id} is already {job.status}")
            services.jobs.cancel(job_id)
            return job_public(job)

    return await run_in_threadpool(cancel)


@router.post("/{job_id}/resume")
async def resume_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """Re-queues a cancelled or failed job (of a kind that checkpoints) from its last checkpoint; 409 otherwise."""

    def resume() -> JobPublic:
        with services.sessions() as session:
            job = jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id)
        services.jobs.resume(job)
        with services.sessions() as session:
            return job_public(jobs_repo.require_job(session=session, owner_id=principal.user_id, job_id=job_id))

    return await run_in_threadpool(resume)
