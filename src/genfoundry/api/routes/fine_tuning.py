"""OpenAI-compatible fine-tuning jobs (LoRA on image bases): create, list, retrieve, cancel, resume, events (pages
or Server-Sent Events), checkpoints (each an adapter id) and sample images."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import OptionalPrincipalDep, PrincipalDep, ServicesDep
from genfoundry.api.routes.jobs import event_cursor, parse_event_id
from genfoundry.api.sse import stream_job_events
from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Conflict, Invalid, NotFound, Unauthorized
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas import (
    FineTuningCheckpointPublic,
    FineTuningError,
    FineTuningEventPublic,
    FineTuningJobCreate,
    FineTuningJobPublic,
    ListPublic,
)
from genfoundry.schemas.jobs import JobStatus
from genfoundry.services.classifiers import CLASSIFIER_KIND
from genfoundry.services.sft import SFT_KIND
from genfoundry.services.training import TRAINING_KIND

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])

FINE_TUNING_KINDS = (TRAINING_KIND, CLASSIFIER_KIND, SFT_KIND)


def fine_tuning_public(job: Job, *, estimated_finish: int | None = None) -> FineTuningJobPublic:
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
        error=FineTuningError(code="job_failed", message=job.error)
        if job.status == JobStatus.FAILED and job.error
        else None,
        seed=int(hyper.get("seed", 0)),
        estimated_finish=estimated_finish,
        user_provided_suffix=params.get("suffix"),
        progress={"step": job.progress_step, "total": job.progress_total},
    )


def sample_path(job_id: str, name: str) -> str:
    return f"/v1/fine_tuning/jobs/{job_id}/samples/{name}"


def event_public(event: JobEvent, *, request: Request, services: Any) -> FineTuningEventPublic:
    data = dict(event.data)
    if event.type == "sample" and "name" in data:
        data["url"] = services.signer.path_url(str(request.base_url), sample_path(event.job_id, data["name"]))
    return FineTuningEventPublic(
        id=f"ev_{event.seq}",
        created_at=int(event.created_at.timestamp()),
        message=event.message or event.type,
        type="metrics" if event.type == "metrics" else "message",
        level="error" if event.type == "status" and event.message.startswith(JobStatus.FAILED) else "info",
        data={"kind": event.type, **data},
    )


# A checkpoint event's numbers under OpenAI's checkpoint metric names (SFT's validation split gives the valid_*).
_CHECKPOINT_METRICS = {"loss": "train_loss", "eval_loss": "valid_loss", "token_accuracy": "valid_mean_token_accuracy"}


def checkpoint_public(event: JobEvent) -> FineTuningCheckpointPublic:
    step = int(event.data.get("step", 0))
    measured = {
        public: float(event.data[name])
        for name, public in _CHECKPOINT_METRICS.items()
        if event.data.get(name) is not None
    }
    return FineTuningCheckpointPublic(
        id=f"ftckpt_{event.seq}",
        created_at=int(event.created_at.timestamp()),
        fine_tuned_model_checkpoint=event.data.get("adapter_id"),
        fine_tuning_job_id=event.job_id,
        step_number=step,
        metrics={"step": float(step), **measured},
    )


def _public(services: Any, job: Job) -> FineTuningJobPublic:
    return fine_tuning_public(job, estimated_finish=services.training.estimated_finish(job))


def _job(services: Any, owner_id: str, job_id: str) -> Job:
    """The caller's fine-tuning job; another user's, or a job of another kind, is NotFound."""
    with services.sessions() as session:
        job = jobs_repo.require_job(session=session, owner_id=owner_id, job_id=job_id)
    if job.kind not in FINE_TUNING_KINDS:
        raise NotFound(f"No fine-tuning job with id '{job_id}'", param="fine_tuning_job_id")
    return job


@router.post("")
async def create_fine_tuning_job(
    body: FineTuningJobCreate, services: ServicesDep, principal: PrincipalDep
) -> FineTuningJobPublic:
    """`method.type` `lora` or `dreambooth`: `model` is an image base id, `training_file` an image dataset (a
    DreamBooth `train_mode: "full"` yields a private model id instead of an adapter). `classifier`: `model` is
    the router's encoder, `training_file` a JSONL file of {"text", "label"} lines; the result is a classifier for
    /v1/classify. `sft`: `model` is a text base id, `training_file` a JSONL file of {"prompt", "completion"} or
    {"messages"} lines; the result is a text adapter for /v1/chat/completions."""

    def create() -> Job:
        if body.method.type in ("lora", "dreambooth"):
            return services.training.create(owner_id=principal.user_id, body=body)
        if body.method.type == "classifier":
            return services.classifiers.create_job(owner_id=principal.user_id, body=body)
        if body.method.type == "sft":
            return services.sft.create_job(owner_id=principal.user_id, body=body)
        raise Invalid(f"method.type {body.method.type!r} is not available yet", param="method.type")

    return fine_tuning_public(await run_in_threadpool(create))


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
                session=session, owner_id=principal.user_id, kinds=FINE_TUNING_KINDS, limit=limit, after=after
            )
        return ListPublic(data=[_public(services, row) for row in rows], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{job_id}")
async def read_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    def load() -> FineTuningJobPublic:
        return _public(services, _job(services, principal.user_id, job_id))

    return await run_in_threadpool(load)


@router.post("/{job_id}/cancel")
async def cancel_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    """Stops the job at its next step boundary, with a checkpoint; 409 once it has ended."""

    def cancel() -> FineTuningJobPublic:
        job = _job(services, principal.user_id, job_id)
        if not services.jobs.cancel(job_id):
            raise Conflict(f"job {job_id} is already {job.status}")
        return _public(services, _job(services, principal.user_id, job_id))

    return await run_in_threadpool(cancel)


@router.post("/{job_id}/resume")
async def resume_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    """Re-queues a cancelled or failed job; it goes on from its last checkpoint. 409 for any other state."""

    def resume() -> FineTuningJobPublic:
        services.jobs.resume(_job(services, principal.user_id, job_id))
        return _public(services, _job(services, principal.user_id, job_id))

    return await run_in_threadpool(resume)


@router.get("/{job_id}/events", response_model=None)
async def read_fine_tuning_events(
    request: Request,
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    stream: bool = False,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
) -> ListPublic[FineTuningEventPublic] | StreamingResponse:
    """Oldest first; `after` is an event id from a previous page. `stream=true`: Server-Sent Events that follow
    the job (replaying from `Last-Event-ID`) and end with `data: [DONE]`. `data.kind` says what an event is
    (log, metrics, checkpoint, sample with its image `url`, status)."""
    after_seq, param = event_cursor(after, last_event_id)

    def load() -> ListPublic[FineTuningEventPublic]:
        _job(services, principal.user_id, job_id)
        with services.sessions() as session:
            jobs_repo.check_event_cursor(session=session, job_id=job_id, seq=after_seq, param=param)
            if stream:
                return ListPublic(data=[])
            events, has_more = jobs_repo.list_events(session=session, job_id=job_id, after=after_seq, limit=limit)
            return ListPublic(
                data=[event_public(event, request=request, services=services) for event in events], has_more=has_more
            )

    page = await run_in_threadpool(load)
    if not stream:
        return page
    return stream_job_events(
        request,
        sessions=services.sessions,
        job_id=job_id,
        after=after_seq,
        render=lambda event: event_public(event, request=request, services=services).model_dump(),
        event_name=lambda event: "metrics" if event.type == "metrics" else "message",
    )


@router.get("/{job_id}/checkpoints")
async def read_fine_tuning_checkpoints(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ListPublic[FineTuningCheckpointPublic]:
    """Newest first; `fine_tuned_model_checkpoint` is an adapter id usable in /v1/images/generations."""
    if after is not None and not after.startswith("ftckpt_"):
        raise Invalid(f"unknown checkpoint id {after!r}", param="after")
    after_seq = parse_event_id("ev_" + after.removeprefix("ftckpt_")) if after else None

    def load() -> ListPublic[FineTuningCheckpointPublic]:
        _job(services, principal.user_id, job_id)
        with services.sessions() as session:
            jobs_repo.check_event_cursor(session=session, job_id=job_id, seq=after_seq)
            events, has_more = jobs_repo.newest_events(
                session=session, job_id=job_id, type="checkpoint", limit=limit, before=after_seq
            )
        return ListPublic(data=[checkpoint_public(event) for event in events], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{job_id}/samples/{name}", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def read_fine_tuning_sample(
    request: Request,
    job_id: str,
    name: str,
    services: ServicesDep,
    principal: OptionalPrincipalDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """A sample image of the job: for its owner's key, or anyone holding an unexpired signed URL."""
    path = sample_path(job_id, name)
    signed = expires is not None and signature is not None and services.signer.verify(path, expires, signature)
    if not signed and principal is None:
        raise Unauthorized("missing API key or valid signature")

    def load() -> bytes:
        if not signed:
            assert principal is not None
            _job(services, principal.user_id, job_id)
        data: bytes = services.training.sample_bytes(job_id=job_id, name=name)
        return data

    return Response(await run_in_threadpool(load), media_type="image/png")
