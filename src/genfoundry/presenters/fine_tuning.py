"""Fine-tuning jobs in OpenAI's shapes: the job, its events (samples with signed URLs) and its checkpoints; and
the methods of the registry with their hyperparameters."""

from __future__ import annotations

from typing import Any

from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Invalid
from genfoundry.presenters.jobs import event_id, parse_event_id
from genfoundry.schemas import FineTuningCheckpointPublic, FineTuningError, FineTuningEventPublic, FineTuningJobPublic
from genfoundry.schemas.fine_tuning import (
    SUPERVISED,
    FineTuningBasePublic,
    FineTuningMethodPublic,
    HyperparameterPublic,
)
from genfoundry.schemas.jobs import JobStatus
from genfoundry.services.fine_tuning.method import FineTuningMethod
from genfoundry.services.fine_tuning.registry import public_method_name
from genfoundry.services.fine_tuning.service import CHECKPOINT_PREFIX

# A checkpoint event's numbers under OpenAI's checkpoint metric names (SFT's validation split gives the valid_*).
_CHECKPOINT_METRICS = {"loss": "train_loss", "eval_loss": "valid_loss", "token_accuracy": "valid_mean_token_accuracy"}
_CHECKPOINT_PREFIX = CHECKPOINT_PREFIX


def fine_tuning_public(job: Job, *, estimated_finish: int | None = None) -> FineTuningJobPublic:
    params: dict[str, Any] = job.params
    hyper = params.get("hyperparameters", {})
    method = public_method_name(params.get("method", "lora"))
    return FineTuningJobPublic(
        id=job.id,
        created_at=int(job.created_at.timestamp()),
        finished_at=int(job.finished_at.timestamp()) if job.finished_at else None,
        model=params.get("base_id", ""),
        fine_tuned_model=job.result.get("fine_tuned_model"),
        status=job.status,  # type: ignore[arg-type]
        training_file=params.get("dataset_id", ""),
        hyperparameters=hyper,
        # OpenAI's method types are supervised, dpo and reinforcement: every method here learns from examples
        # (supervised); which one of ours ran is `method.id`, the id GET /v1/fine_tuning/methods lists.
        method={"type": SUPERVISED, "id": method, method: {"hyperparameters": hyper}},
        error=FineTuningError(code="job_failed", message=job.error)
        if job.status == JobStatus.FAILED and job.error
        else None,
        seed=int(hyper.get("seed", 0)),
        estimated_finish=estimated_finish,
        user_provided_suffix=params.get("suffix"),
        progress={"step": job.progress_step, "total": job.progress_total},
    )


def sample_path(job_id: str, name: str) -> str:
    """The API path of a job's sample image (signed for a browser by the caller)."""
    return f"/v1/fine_tuning/jobs/{job_id}/samples/{name}"


def fine_tuning_event_public(event: JobEvent, *, sample_url: str | None = None) -> FineTuningEventPublic:
    """`sample_url`: the signed URL of a sample event's image."""
    data = dict(event.data)
    if sample_url is not None:
        data["url"] = sample_url
    return FineTuningEventPublic(
        id=event_id(event),
        created_at=int(event.created_at.timestamp()),
        message=event.message or event.type,
        type="metrics" if event.type == "metrics" else "message",
        level="error" if event.type == "status" and event.message.startswith(JobStatus.FAILED) else "info",
        data={"kind": event.type, **data},
    )


def checkpoint_public(event: JobEvent) -> FineTuningCheckpointPublic:
    step = int(event.data.get("step", 0))
    measured = {
        public: float(event.data[name])
        for name, public in _CHECKPOINT_METRICS.items()
        if event.data.get(name) is not None
    }
    return FineTuningCheckpointPublic(
        id=f"{_CHECKPOINT_PREFIX}{event.seq}",
        created_at=int(event.created_at.timestamp()),
        fine_tuned_model_checkpoint=event.data.get("adapter_id"),
        fine_tuning_job_id=event.job_id,
        step_number=step,
        metrics={"step": float(step), **measured},
    )


def parse_checkpoint_id(value: str | None) -> int | None:
    """`ftckpt_<seq>` → the checkpoint event's seq, for the `after` cursor of checkpoint lists."""
    if value is None:
        return None
    if not value.startswith(_CHECKPOINT_PREFIX):
        raise Invalid(f"unknown checkpoint id {value!r}", param="after")
    return parse_event_id("ev_" + value.removeprefix(_CHECKPOINT_PREFIX))


def method_public(method: FineTuningMethod, owner_id: str) -> FineTuningMethodPublic:
    """A method as its class and its hyperparameters' schema describe it; bases as `owner_id` sees them."""
    defaults = method.defaults()
    schema = method.hyperparameters_model.model_json_schema()
    return FineTuningMethodPublic(
        id=method.name,
        description=(type(method).__doc__ or method.name).strip().splitlines()[0],
        dataset=method.dataset,  # type: ignore[arg-type]
        validation_file=method.takes_validation_file,
        resumable=method.resumable,
        families=list(defaults),
        bases=[FineTuningBasePublic(id=base_id, family=family) for base_id, family in method.bases(owner_id)],
        hyperparameters=[
            hyperparameter_public(name, field, {family: values.get(name) for family, values in defaults.items()})
            for name, field in schema["properties"].items()
        ],
    )


def hyperparameter_public(name: str, field: dict[str, Any], defaults: dict[str, Any]) -> HyperparameterPublic:
    """One property of a hyperparameters model's JSON schema: `X | Literal["auto"] | None` with `hyper`'s extras."""
    variants = field.get("anyOf", [field])
    auto = any(variant.get("const") == "auto" or variant.get("enum") == ["auto"] for variant in variants)
    typed = [v for v in variants if v.get("type") not in (None, "null") and "const" not in v and "enum" not in v]
    kind = typed[0]["type"] if typed else "string"
    inner = typed[0] if typed else {}
    minimum = field.get("minimum", inner.get("minimum", inner.get("exclusiveMinimum")))
    maximum = field.get("maximum", inner.get("maximum", inner.get("exclusiveMaximum")))
    return HyperparameterPublic(
        name=name,
        type=kind,  # type: ignore[arg-type]
        description=str(field.get("description", "")),
        auto=auto,
        minimum=minimum,
        maximum=maximum,
        max_length=inner.get("maxLength", inner.get("maxItems")),
        choices=field.get("x-choices"),
        defaults=defaults,
    )
