"""Fine-tuning jobs for the API and the CLI: created through their method, then read, cancelled, resumed and
followed like any job, with checkpoints, samples and an estimated finish."""

from __future__ import annotations

from datetime import timedelta

from genfoundry.db.tables import Adapter, Job, JobEvent
from genfoundry.errors import Invalid, NotFound
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.runner import JobRunner
from genfoundry.model_files import SingleFileBase
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.schemas.fine_tuning import SUPERVISED
from genfoundry.schemas.jobs import JobStatus
from genfoundry.services.fine_tuning.image import ImageMethod, sample_key
from genfoundry.services.fine_tuning.method import FineTuningMethod
from genfoundry.services.fine_tuning.promotion import checked_line, copy_adapter
from genfoundry.services.fine_tuning.registry import FINE_TUNING_KINDS, METHODS, method_for
from genfoundry.services.jobs import JobService


def estimated_finish(job: Job, last_metrics: JobEvent | None) -> int | None:
    """Unix time the running job should end: the steps left at the last reported rate."""
    if job.status != JobStatus.RUNNING or last_metrics is None or job.progress_total <= 0:
        return None
    rate = float(last_metrics.data.get("it_per_s") or 0.0)
    if rate <= 0:
        return None
    left = max(job.progress_total - int(last_metrics.data.get("step", job.progress_step)), 0)
    return int((last_metrics.created_at + timedelta(seconds=left / rate)).timestamp())


CHECKPOINT_PREFIX = "ftckpt_"  # a checkpoint's public id: the prefix and its event's seq


class FineTuningService(JobService):
    """The fine-tuning jobs of every method; a job of another kind is NotFound here."""

    def __init__(self, *, env: JobEnv, runner: JobRunner) -> None:
        super().__init__(
            sessions=env.sessions,
            runner=runner,
            kinds=FINE_TUNING_KINDS,
            noun="fine-tuning job",
            param="fine_tuning_job_id",
        )
        self.env = env

    def create(self, *, owner_id: str, body: FineTuningJobCreate, single_file: SingleFileBase | None = None) -> Job:
        """Check everything now (base, data, every hyperparameter), so a bad request is a 4xx; then queue the run.

        `single_file`: an image method trains from these files (already resolved inside the models folder by the
        caller) with `body.model` the catalog base whose configs they use; never built from a request's strings."""
        method = method_for(body.method.type if body.method is not None else self.default_method(body.model), self.env)
        with self.sessions() as session:
            if single_file is None:
                params = method.validate(session, owner_id, body)
            elif isinstance(method, ImageMethod):
                params = method.validate(session, owner_id, body, single_file=single_file)
            else:
                raise Invalid(f"{method.name} fine-tuning cannot train from single files", param="method")
            job = self.runner.submit(session=session, owner_id=owner_id, kind=method.kind, params=params)
            session.commit()
        self.runner.start(job)
        return job

    def default_method(self, model: str) -> str:
        """The method of a request that names none (the openai CLI, older SDKs): the base's own."""
        return SUPERVISED if model in self.env.catalog.text_models else "lora"

    def estimated_finish(self, job: Job) -> int | None:
        return estimated_finish(job, self.latest_event(job_id=job.id, type="metrics"))

    def sample_bytes(self, *, job_id: str, name: str, owner_id: str | None) -> bytes:
        """A sample image; `owner_id` None when a signed URL already proved the right to read it."""
        if owner_id is not None:
            self.get(owner_id=owner_id, job_id=job_id)
        key = sample_key(job_id, name)
        if not self.env.store.exists(key):
            raise NotFound(f"No sample named '{name}'")
        return self.env.store.get_bytes(key)

    def methods(self) -> list[FineTuningMethod]:
        """Every method of the registry, over this server's environment."""
        return [method_for(name, self.env) for name in METHODS]

    def promote_checkpoint(
        self, *, owner_id: str, job_id: str, checkpoint_id: str, name: str, trigger_word: str | None
    ) -> Adapter:
        """Copies a checkpoint's adapter to a new adapter named `name` (trigger word: the given one, else the
        checkpoint's). Another user's job or an unknown checkpoint is NotFound."""
        name = checked_line(name, param="name", max_length=200) or ""
        if not name:
            raise Invalid("name must not be empty", param="name")
        trigger_word = checked_line(trigger_word, param="trigger_word", max_length=100)
        seq = _checkpoint_seq(checkpoint_id)
        with self.sessions() as session:
            self._owned(session, owner_id, job_id)
            found, _ = jobs_repo.newest_events(
                session=session, job_id=job_id, type="checkpoint", limit=1, before=None if seq is None else seq + 1
            )
            if seq is None or not found or found[0].seq != seq:
                raise NotFound(f"job {job_id} has no checkpoint {checkpoint_id!r}", param="checkpoint_id")
            event = found[0]
            adapter_id = event.data.get("adapter_id")
            if not adapter_id:
                raise Invalid(
                    "this checkpoint is a whole model's weights, kept only to resume; its job's result is the model",
                    param="checkpoint_id",
                )
            source = adapters_repo.get_adapter(session=session, owner_id=owner_id, adapter_id=str(adapter_id))
            if source is None:
                raise NotFound(f"the checkpoint's adapter {adapter_id} was deleted", param="checkpoint_id")
            session.expunge(source)
        tags = {"job": job_id, "promoted_from": checkpoint_id, "step": str(event.data.get("step", 0))}
        return copy_adapter(
            sessions=self.sessions,
            store=self.env.store,
            source=source,
            name=name,
            trigger_word=trigger_word if trigger_word is not None else source.trigger_word,
            tags=tags,
        )


def _checkpoint_seq(checkpoint_id: str) -> int | None:
    """`ftckpt_<seq>` → seq; None for anything else (an unknown checkpoint, not a bad request)."""
    digits = checkpoint_id.removeprefix(CHECKPOINT_PREFIX)
    if not checkpoint_id.startswith(CHECKPOINT_PREFIX) or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)
