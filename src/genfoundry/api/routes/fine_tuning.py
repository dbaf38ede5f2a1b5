"""OpenAI-compatible fine-tuning jobs (LoRA and DreamBooth on image bases, classifiers, SFT of text bases): create,
list, retrieve, cancel, resume, events (pages or Server-Sent Events), checkpoints (each an adapter id, promoted to
a named model in one call) and sample images; and the methods with their hyperparameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from genfoundry.api.deps import OptionalPrincipalDep, PrincipalDep, ServicesDep
from genfoundry.api.sse import EventCursor, LastEventId, job_events
from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Unauthorized
from genfoundry.presenters.fine_tuning import (
    checkpoint_public,
    fine_tuning_event_public,
    fine_tuning_public,
    method_public,
    parse_checkpoint_id,
    sample_path,
)
from genfoundry.presenters.models import adapter_public
from genfoundry.schemas import (
    FineTuningCheckpointPublic,
    FineTuningEventPublic,
    FineTuningJobCreate,
    FineTuningJobPublic,
    ListPublic,
    ModelPublic,
)
from genfoundry.schemas.fine_tuning import CheckpointPromote, FineTuningMethodPublic
from genfoundry.services import Services

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])
methods_router = APIRouter(prefix="/v1/fine_tuning/methods", tags=["fine-tuning"])


@methods_router.get("")
def read_fine_tuning_methods(services: ServicesDep, principal: PrincipalDep) -> ListPublic[FineTuningMethodPublic]:
    """Each `method.type` with the bases it trains (as the caller sees them), what `training_file` must hold, and
    its hyperparameters: type, one-line description, range, whether "auto" is taken, the default per family."""
    return ListPublic(data=[method_public(method, principal.user_id) for method in services.fine_tuning.methods()])


def _public(services: Services, job: Job) -> FineTuningJobPublic:
    return fine_tuning_public(job, estimated_finish=services.fine_tuning.estimated_finish(job))


@router.post("")
def create_fine_tuning_job(
    body: FineTuningJobCreate, services: ServicesDep, principal: PrincipalDep
) -> FineTuningJobPublic:
    """`method.type` `lora` or `dreambooth`: `model` is an image base id, `training_file` an image dataset (a
    DreamBooth `train_mode: "full"` yields a private model id instead of an adapter). `classifier`: `model` is
    the router's encoder, `training_file` a JSONL file of {"text", "label"} lines; the result is a classifier for
    /v1/classify. `supervised` (alias `sft`): `model` is a text base id, `training_file` a JSONL file of
    {"prompt", "completion"} or {"messages"} lines; the result is a text adapter for /v1/chat/completions. No
    `method`: the base's own (supervised for a text base, lora for an image base). Jobs report OpenAI's
    `method.type` "supervised" and the method that ran as `method.id`."""
    return fine_tuning_public(services.fine_tuning.create(owner_id=principal.user_id, body=body))


@router.get("")
def read_fine_tuning_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListPublic[FineTuningJobPublic]:
    rows, has_more = services.fine_tuning.list_jobs(owner_id=principal.user_id, after=after, limit=limit)
    return ListPublic(data=[_public(services, row) for row in rows], has_more=has_more)


@router.get("/{job_id}")
def read_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    return _public(services, services.fine_tuning.get(owner_id=principal.user_id, job_id=job_id))


@router.post("/{job_id}/cancel")
def cancel_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    """Stops the job at its next step boundary, with a checkpoint; 409 once it has ended."""
    return _public(services, services.fine_tuning.cancel(owner_id=principal.user_id, job_id=job_id))


@router.post("/{job_id}/resume")
def resume_fine_tuning_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> FineTuningJobPublic:
    """Re-queues a cancelled or failed job; it goes on from its last checkpoint. 409 for any other state."""
    return _public(services, services.fine_tuning.resume(owner_id=principal.user_id, job_id=job_id))


@router.get("/{job_id}/events", response_model=None)
def read_fine_tuning_events(
    request: Request,
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: EventCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    stream: bool = False,
    last_event_id: LastEventId = None,
) -> ListPublic[FineTuningEventPublic] | StreamingResponse:
    """Oldest first; `after` is an event id from a previous page. `stream=true`: Server-Sent Events that follow
    the job (replaying from `Last-Event-ID`) and end with `data: [DONE]`. `data.kind` says what an event is
    (log, metrics, checkpoint, sample with its image `url`, status)."""

    def present(event: JobEvent) -> FineTuningEventPublic:
        url = None
        if event.type == "sample" and "name" in event.data:
            url = services.signer.path_url(str(request.base_url), sample_path(event.job_id, event.data["name"]))
        return fine_tuning_event_public(event, sample_url=url)

    return job_events(
        request,
        services.fine_tuning,
        owner_id=principal.user_id,
        job_id=job_id,
        after=after,
        last_event_id=last_event_id,
        limit=limit,
        stream=stream,
        present=present,
        event_name=lambda event: "metrics" if event.type == "metrics" else "message",
    )


@router.get("/{job_id}/checkpoints")
def read_fine_tuning_checkpoints(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ListPublic[FineTuningCheckpointPublic]:
    """Newest first; `fine_tuned_model_checkpoint` is an adapter id usable in /v1/images/generations."""
    events, has_more = services.fine_tuning.newest_events(
        owner_id=principal.user_id, job_id=job_id, type="checkpoint", before=parse_checkpoint_id(after), limit=limit
    )
    return ListPublic(data=[checkpoint_public(event) for event in events], has_more=has_more)


@router.post("/{job_id}/checkpoints/{checkpoint_id}/promote", status_code=201)
def promote_fine_tuning_checkpoint(
    job_id: str, checkpoint_id: str, body: CheckpointPromote, services: ServicesDep, principal: PrincipalDep
) -> ModelPublic:
    """Keeps a checkpoint as a model of its own (a copy of its adapter, named `name`, in GET /v1/models), so it
    outlives the run's checkpoints; `trigger_word` defaults to the checkpoint's."""
    adapter = services.fine_tuning.promote_checkpoint(
        owner_id=principal.user_id,
        job_id=job_id,
        checkpoint_id=checkpoint_id,
        name=body.name,
        trigger_word=body.trigger_word,
    )
    return adapter_public(adapter)


@router.get("/{job_id}/samples/{name}", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def read_fine_tuning_sample(
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
    owner_id = None if signed or principal is None else principal.user_id
    data = services.fine_tuning.sample_bytes(job_id=job_id, name=name, owner_id=owner_id)
    return Response(data, media_type="image/png")
