"""Fine-tuning jobs for the API and the CLI: created through their method, then read, cancelled, resumed and
followed like any job, with checkpoints, samples and an estimated finish."""

from __future__ import annotations

from datetime import timedelta

from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import NotFound
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.runner import JobRunner
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.schemas.jobs import JobStatus
from genfoundry.services.fine_tuning.image import sample_key
from genfoundry.services.fine_tuning.registry import FINE_TUNING_KINDS, method_for
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

    def create(self, *, owner_id: str, body: FineTuningJobCreate) -> Job:
        """Check everything now (base, data, every hyperparameter), so a bad request is a 4xx; then queue the run."""
        method = method_for(body.method.type, self.env)
        with self.sessions() as session:
            params = method.validate(session, owner_id, body)
            job = self.runner.submit(session=session, owner_id=owner_id, kind=method.kind, params=params)
            session.commit()
        self.runner.start(job)
        return job

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
