"""Fine-tuning jobs: checked and queued here, run by the job runner in their own process, registered as adapters."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.catalog import Catalog
from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Conflict, Invalid, NotFound
from genfoundry.jobs.runner import JobContext, JobRunner
from genfoundry.repo import datasets as datasets_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import slug
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.schemas.jobs import JobStatus
from genfoundry.services.adapters import AdapterService
from genfoundry.services.datasets import DatasetService
from genfoundry.services.trained_models import register_trained_model
from genfoundry.storage import ArtifactStore

TRAINING_KIND = "fine_tune_lora"
# OpenAI's names, mapped onto the recipe's; "auto" means the family default.
_RENAMED = {"n_epochs": "epochs"}
_AUTO = ("n_epochs", "batch_size", "learning_rate_multiplier")
_SAMPLE_NAME = re.compile(r"^step_\d{6}_\d{1,2}\.png$")


def sample_key(job_id: str, name: str) -> str:
    """Where a job's sample image lives in the artifact store; the name must be one a recipe writes."""
    if not _SAMPLE_NAME.match(name):
        raise NotFound(f"No sample named '{name}'")
    return f"jobs/{job_id}/samples/{name}"


def estimated_finish(job: Job, last_metrics: JobEvent | None) -> int | None:
    """Unix time the running job should end: the steps left at the last reported rate."""
    if job.status != JobStatus.RUNNING or last_metrics is None or job.progress_total <= 0:
        return None
    rate = float(last_metrics.data.get("it_per_s") or 0.0)
    if rate <= 0:
        return None
    left = max(job.progress_total - int(last_metrics.data.get("step", job.progress_step)), 0)
    finish: datetime = last_metrics.created_at + timedelta(seconds=left / rate)
    return int(finish.timestamp())


def recipe_params(body: FineTuningJobCreate) -> dict[str, Any]:
    """The recipe's hyperparameters from the request (method settings win over the legacy top-level ones)."""
    merged: dict[str, Any] = {}
    for source in (body.hyperparameters, body.method.settings()):
        if source is not None:
            merged.update(source.model_dump(exclude_none=True))
    for name in _AUTO:
        if merged.get(name) == "auto":
            merged.pop(name)
    multiplier = merged.pop("learning_rate_multiplier", None)
    if multiplier is not None:
        merged["learning_rate"] = float(merged.get("learning_rate", 1e-4)) * float(multiplier)
    if "validation_prompts" in merged:
        merged["validation_prompts"] = tuple(merged["validation_prompts"])
    return {_RENAMED.get(k, k): v for k, v in merged.items()}


class TrainingService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        catalog: Catalog,
        datasets: DatasetService,
        adapters: AdapterService,
        jobs: JobRunner,
        store: ArtifactStore,
        work_dir: Path,
        models_dir: Path,
        class_cache_dir: Path,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.models_dir = models_dir  # full fine-tunes are registered under <models_dir>/trained
        self.class_cache_dir = class_cache_dir  # DreamBooth class images, shared by runs with the same key
        self.catalog = catalog
        self.datasets = datasets
        self.adapters = adapters
        self.jobs = jobs
        self.work_dir = work_dir

    def register(self, runner: JobRunner) -> None:
        runner.register(TRAINING_KIND, self.run, resumable=True)

    def create(self, *, owner_id: str, body: FineTuningJobCreate) -> Job:
        """Check everything (base, dataset, every hyperparameter) now, so a bad request is a 4xx, then queue."""
        from genfoundry.training.registry import CONFIGS

        if body.method.type not in CONFIGS:
            raise Invalid(f"method.type {body.method.type!r} does not train an image model", param="method.type")
        base = self.catalog.find_visible(body.model, owner_id)  # a public base, or one of the caller's trained
        if base is None:
            raise NotFound(f"The model '{body.model}' does not exist", param="model")
        with self.sessions() as session:
            dataset = datasets_repo.require_dataset(
                session=session, owner_id=owner_id, dataset_id=body.training_file, param="training_file"
            )
            if dataset.kind != "image":
                raise Invalid(
                    f"{body.method.type} training needs an image dataset; this one is text", param="training_file"
                )
            if dataset.status != "ready":
                raise Conflict(f"dataset {dataset.id} is {dataset.status}; train on it when it is ready")
            if dataset.accepted == 0:
                raise Invalid("the dataset has no images", param="training_file")
            params = recipe_params(body)
            params.setdefault("trigger_word", dataset.trigger_word)
            if body.seed is not None:
                params["seed"] = body.seed
            CONFIGS[body.method.type].from_params(base.family, base.source, params)
            job = self.jobs.submit(
                session=session,
                owner_id=owner_id,
                kind=TRAINING_KIND,
                params={
                    "method": body.method.type,
                    "base_id": base.id,
                    "dataset_id": dataset.id,
                    "suffix": body.suffix,
                    "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
                },
            )
            session.commit()
        self.jobs.start(job)
        return job

    def estimated_finish(self, job: Job) -> int | None:
        with self.sessions() as session:
            return estimated_finish(job, jobs_repo.latest_event(session=session, job_id=job.id, type="metrics"))

    def sample_bytes(self, *, job_id: str, name: str) -> bytes:
        key = sample_key(job_id, name)
        if not self.store.exists(key):
            raise NotFound(f"No sample named '{name}'")
        return self.store.get_bytes(key)

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """The job function, in the job's own process."""
        from genfoundry.training.callbacks import TrainingCallbacks
        from genfoundry.training.checkpoints import LORA_WEIGHT_NAME
        from genfoundry.training.registry import CONFIGS, RECIPES

        params = ctx.params
        with self.sessions() as session:
            dataset = datasets_repo.get_dataset(session=session, dataset_id=params["dataset_id"])
            job = jobs_repo.get_job(session=session, job_id=ctx.job_id)
        if dataset is None or job is None:
            raise NotFound("the training dataset was deleted")
        base = self.catalog.get_visible(params["base_id"], job.owner_id)
        hyper = dict(params["hyperparameters"])
        if "validation_prompts" in hyper:
            hyper["validation_prompts"] = tuple(hyper["validation_prompts"])
        method = str(params.get("method", "lora"))
        config = CONFIGS[method].from_params(base.family, base.source, hyper)
        output_dir = self.work_dir / ctx.job_id
        name = slug("-".join(part for part in ("ft", base.id, params.get("suffix")) if part))
        last_loss: dict[str, float] = {}

        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            ctx.progress(step, total)
            ctx.metrics(step, total=total, **metrics)
            last_loss["loss"] = metrics["loss"]

        def on_checkpoint(step: int, path: Path) -> None:
            # A LoRA checkpoint becomes an adapter at once, so it can be tried while training goes on (a full
            # fine-tune's checkpoint is a whole UNet: it only serves to resume).
            adapter_id = None
            if (path / LORA_WEIGHT_NAME).is_file():
                adapter_id = self.adapters.import_upload(
                    owner_id=job.owner_id,
                    upload=path / LORA_WEIGHT_NAME,
                    base_id=base.id,
                    name=f"{name}-step-{step}",
                    trigger_word=config.trigger_word,
                    tags={"job": ctx.job_id, "checkpoint_step": str(step)},
                ).id
            ctx.checkpoint(step, str(path), adapter_id=adapter_id, loss=last_loss.get("loss"))

        def on_sample(step: int, prompt: str, path: Path) -> None:
            self.store.put_file(sample_key(ctx.job_id, path.name), path)
            ctx.event("sample", f"sample at step {step}: {prompt}", step=step, prompt=prompt, name=path.name)

        callbacks = TrainingCallbacks(
            on_step=on_step,
            on_checkpoint=on_checkpoint,
            on_sample=on_sample,
            should_stop=ctx.cancel_requested,
            on_log=ctx.log,
        )
        extra = {"class_cache_dir": self.class_cache_dir} if method == "dreambooth" else {}
        result = RECIPES[method](
            config,
            self.datasets.image_dir(dataset),
            output_dir,
            callbacks,
            resume_from=Path(ctx.resume_from) if ctx.resume_from else None,
            **extra,
        )
        if result.stopped or (result.adapter_path is None and result.model_path is None):
            ctx.check_cancelled()
            raise Conflict("training stopped before the end")
        if result.model_path is not None:
            model_id = register_trained_model(
                models_dir=self.models_dir,
                owner_id=job.owner_id,
                family=base.family,
                source_dir=result.model_path,
                model_id=f"{name}-{ctx.job_id.removeprefix('job_')[:8]}",
                description=f"{method} fine-tune of {base.id} (job {ctx.job_id})",
                base_id=base.id,
                defaults=base.defaults,
                move=True,
            )
            return {"fine_tuned_model": model_id, "steps": result.step}
        assert result.adapter_path is not None
        adapter = self.adapters.import_upload(
            owner_id=job.owner_id,
            upload=result.adapter_path,
            base_id=base.id,
            name=name,
            trigger_word=config.trigger_word,
            tags={"job": ctx.job_id},
        )
        return {"fine_tuned_model": adapter.id, "steps": result.step}
