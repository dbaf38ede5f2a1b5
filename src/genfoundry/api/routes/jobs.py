"""Jobs of every kind (dataset downloads, captioning, training): list, status, events (pages or SSE), log,
cancel, resume."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.sse import EventCursor, LastEventId, job_events
from genfoundry.presenters.jobs import job_event_public, job_public
from genfoundry.schemas import JobEventPublic, JobPublic, ListPublic

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("")
def read_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    kind: Annotated[str | None, Query(max_length=40)] = None,
) -> ListPublic[JobPublic]:
    """The caller's jobs, newest first; `after` is the last id of the previous page."""
    rows, has_more = services.user_jobs.list_jobs(owner_id=principal.user_id, after=after, limit=limit, kind=kind)
    return ListPublic(data=[job_public(row) for row in rows], has_more=has_more)


@router.get("/{job_id}")
def read_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    return job_public(services.user_jobs.get(owner_id=principal.user_id, job_id=job_id))


@router.get("/{job_id}/events", response_model=None)
def read_job_events(
    request: Request,
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: EventCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    stream: bool = False,
    last_event_id: LastEventId = None,
) -> ListPublic[JobEventPublic] | StreamingResponse:
    """Oldest first; `after` is an event id from a previous page. `stream=true`: Server-Sent Events that follow
    the job (replaying from `Last-Event-ID`) and end with `data: [DONE]`."""
    return job_events(
        request,
        services.user_jobs,
        owner_id=principal.user_id,
        job_id=job_id,
        after=after,
        last_event_id=last_event_id,
        limit=limit,
        stream=stream,
        present=job_event_public,
        event_name=lambda event: event.type,
    )


@router.get("/{job_id}/log", response_class=PlainTextResponse)
def read_job_log(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    tail: Annotated[int, Query(ge=1, le=10000)] = 10,
) -> PlainTextResponse:
    """The job's last `tail` log and status lines as plain text, one per line."""
    events = services.user_jobs.log_tail(owner_id=principal.user_id, job_id=job_id, limit=tail)
    return PlainTextResponse("".join(f"{event.created_at:%Y-%m-%d %H:%M:%S} {event.message}\n" for event in events))


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """Stops the job at its next step boundary; a finished job cannot be cancelled (409)."""
    return job_public(services.user_jobs.cancel(owner_id=principal.user_id, job_id=job_id))


@router.post("/{job_id}/resume")
def resume_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """Re-queues a cancelled or failed job (of a kind that checkpoints) from its last checkpoint; 409 otherwise."""
    return job_public(services.user_jobs.resume(owner_id=principal.user_id, job_id=job_id))
