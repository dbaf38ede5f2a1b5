"""OpenAI-compatible fine-tuning jobs (LoRA on image bases): create, list, retrieve, cancel, events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.routes.jobs import parse_event_id
from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Conflict, Invalid
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas import (
    FineTuningError,
    FineTuningEventPublic,
    FineTuningJobCreate,
    FineTuningJobPublic,
    ListPublic,
)
from genfoundry.services.training import TRAINING_KIND

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])


def fine_tuning_public(job: Job) -> FineTuningJobPublic:
    params: dict[str, Any] = job.params
    hyper = params.get("hyperparameters", {})
    return FineTuningJobPublic(
        id=job.id,
        created_at=int(job.created_at.timestamp()),
        finished_at=int(job.finished_at.timestamp()) if job.finished_at else None,
        model=params.get("base_id", ""),
        fine_tuned_model=job.result.get("fine_tuned_model"),
        status=job.status,  # type: ignore[arg-type]
        training_file=params.get("dataset_id", ""),
        hyperparameters=hyper,
        method={"type": params.get("method", "lora"), params.get("method", "lora"): {"hyperparameters": hyper}},
        error=FineTuningError(code="job_failed", message=job.error) if job.status == "failed" and job.error else None,
        seed=int(hyper.get("seed", 0)),
        user_provided_suffix=params.get("suffix"),
        progress={"step": job.progress_step, "total": job.progress_total},
    )


def event_public(event: JobEvent) -> FineTuningEventPublic:
    return FineTuningEventPublic(
        id=f"ev_{event.seq}",
        created_at=int(event.created_at.timestamp()),
        message=event.message or event.type,
        type="metrics" if event.type == "metrics" else "message",
        level="error" if event.type == "status" and event.message.startswith("failed") else "info",
        data=event.data,
    )


def _training_job(services: Any, owner_id: str, job_id: str) -> Job:
    with services.sessions() as session:
        job = jobs_repo.require_job(session=session, owner_id=owner_id, job_id=job_id)
    if job.kind != TRAINING_KIND:
        raise Invalid(f"job {job_id} is not a fine-tuning job", param="fine_tuning_job_id")
    return job


@router.post("")
async def create_fine_tuning_job(
    body: FineTuningJobCreate, services: ServicesDep, principal: PrincipalDep
) -> FineTuningJobPublic:
    """`model` is a base id, `training_file` an image dataset (or file) id; `method.type` is `lora`."""
    if body.method.type != "lora":
        raise Invalid("only method.type 'lora' is available so far", param="method.type")
    job = await run_in_threadpool(lambda: services.training.create(owner_id=principal.user_id, body=body))
    return fine_tuning_public(job)


@router.get("")
async def read_fine_tuning_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListPublic[FineTuningJobPublic]:
    def load() -> ListPublic[FineTuningJobPublic]:
        with services.sessions() as session:
            rows, has_more = jobs_repo.list_jobs(
                session=session, owner_id=principal.user_id, kind=TRAINING_KIND, limit=limit, after=after
            )
            return ListPublic(data=[fine_tuning_public(row) for row in rows], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{job_id}")
async def read_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    return fine_tuning_public(await run_in_threadpool(_training_job, services, principal.user_id, job_id))


@router.post("/{job_id}/cancel")
async def cancel_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    def cancel() -> FineTuningJobPublic:
        job = _training_job(services, principal.user_id, job_id)
        if not services.jobs.cancel(job_id):
            raise Conflict(f"job {job_id} is already {job.status}")
        return fine_tuning_public(_training_job(services, principal.user_id, job_id))

    return await run_in_threadpool(cancel)


@router.get("/{job_id}/events")
async def read_fine_tuning_events(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> ListPublic[FineTuningEventPublic]:
    """Oldest first; `after` is an event id from a previous page."""
    after_seq = parse_event_id(after)

    def load() -> ListPublic[FineTuningEventPublic]:
        _training_job(services, principal.user_id, job_id)
        with services.sessions() as session:
            events, has_more = jobs_repo.list_events(session=session, job_id=job_id, after=after_seq, limit=limit)
            return ListPublic(data=[event_public(event) for event in events], has_more=has_more)

    return await run_in_threadpool(load)
