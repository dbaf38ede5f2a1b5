"""Job events as a page or a Server-Sent Events stream (replays from a cursor, follows the job, ends with `[DONE]`):
the one events endpoint behind /v1/jobs/{id}/events and /v1/fine_tuning/jobs/{id}/events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from genfoundry.db.tables import JobEvent
from genfoundry.presenters.jobs import event_cursor
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas import ListPublic
from genfoundry.schemas.jobs import FINAL_STATUSES
from genfoundry.services.jobs import JobService

EventT = TypeVar("EventT", bound=BaseModel)

POLL_S = 0.25
KEEPALIVE_S = 15.0
PAGE = 200

# What the events endpoints take as a cursor: the `id` of an event they sent (`ev_<seq>`).
EVENT_ID_PATTERN = r"^ev_[0-9]{1,20}$"
EventCursor = Annotated[
    str | None,
    Query(pattern=EVENT_ID_PATTERN, description="An event id of this job: the page starts after it (else a 400)"),
]
LastEventId = Annotated[
    str | None,
    Header(
        pattern=EVENT_ID_PATTERN,
        description="Sent by a reconnecting client: the stream goes on after that event, or from the job's first "
        "event when it is not one of this job's",
    ),
]


def sse_block(*, data: str, event_id: str | None = None, event: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def stream_job_events(
    request: Request,
    *,
    sessions: Any,
    job_id: str,
    after: int | None,
    render: Callable[[JobEvent], dict[str, Any]],
    event_name: Callable[[JobEvent], str],
) -> StreamingResponse:
    """Every event after `after`, then new ones as the job writes them; `data: [DONE]` once it has ended.

    Each block carries `id: ev_<seq>`, so a client that reconnects with `Last-Event-ID` misses nothing.
    """

    def poll(cursor: int | None) -> tuple[list[dict[str, Any]], list[str], int | None, bool]:
        with sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=job_id)
            ended = job is None or job.status in FINAL_STATUSES  # read before the events: none is missed
            events, more = jobs_repo.list_events(session=session, job_id=job_id, after=cursor, limit=PAGE)
            if events:
                cursor = events[-1].seq
            return [render(e) for e in events], [event_name(e) for e in events], cursor, ended and not more

    async def blocks() -> AsyncIterator[bytes]:
        cursor = after
        quiet_since = time.monotonic()
        while True:
            rendered, names, cursor, done = await run_in_threadpool(poll, cursor)
            for body, name in zip(rendered, names, strict=True):
                yield sse_block(data=json.dumps(body), event_id=body["id"], event=name)
            if done:
                yield sse_block(data="[DONE]")
                return
            if rendered:
                quiet_since = time.monotonic()
                continue
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since >= KEEPALIVE_S:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_S)

    return StreamingResponse(
        blocks(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def job_events(
    request: Request,
    jobs: JobService,
    *,
    owner_id: str,
    job_id: str,
    after: str | None,
    last_event_id: str | None,
    limit: int,
    stream: bool,
    present: Callable[[JobEvent], EventT],
    event_name: Callable[[JobEvent], str],
) -> ListPublic[EventT] | StreamingResponse:
    """A page of the owner's job's events after a cursor (`after`, or a reconnecting client's `Last-Event-ID`),
    oldest first; with `stream`, the SSE stream from that cursor. An `after` that is not one of the job's events
    is a 400, another user's job a 404 — before any stream starts. A `Last-Event-ID` that is not one of the
    job's events starts from the first: a client reconnects with what it was sent last, and a refused stream is
    one its browser never retries."""
    cursor, param = event_cursor(after, last_event_id)
    if param == "Last-Event-ID" and cursor is not None:
        with jobs.sessions() as session:
            if not jobs_repo.is_job_event(session=session, job_id=job_id, seq=cursor):
                cursor = None
    events, has_more = jobs.events(
        owner_id=owner_id, job_id=job_id, after=cursor, limit=0 if stream else limit, param=param
    )
    if not stream:
        return ListPublic(data=[present(event) for event in events], has_more=has_more)
    return stream_job_events(
        request,
        sessions=jobs.sessions,
        job_id=job_id,
        after=cursor,
        render=lambda event: present(event).model_dump(),
        event_name=event_name,
    )
