"""Jobs as their owner sees them: list, read, events, log, cancel, resume. Another user's job is NotFound."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Conflict, NotFound
from genfoundry.jobs.runner import JobRunner
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas.jobs import ACTIVE_STATUSES


class JobService:
    """`kinds` narrows every call to those job kinds (the fine-tuning API sees only fine-tuning jobs); a job of
    another kind is as unknown as one that does not exist, named with `param`."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        runner: JobRunner,
        kinds: Collection[str] | None = None,
        noun: str = "job",
        param: str = "job_id",
    ) -> None:
        self.sessions = sessions
        self.runner = runner
        self.kinds = tuple(kinds) if kinds is not None else None
        self.noun = noun
        self.param = param

    def list_jobs(
        self, *, owner_id: str, after: str | None, limit: int, kind: str | None = None
    ) -> tuple[list[Job], bool]:
        """The owner's jobs, newest first; `after` is the last id of the previous page."""
        kinds = (kind,) if kind else self.kinds
        with self.sessions() as session:
            return jobs_repo.list_jobs(session=session, owner_id=owner_id, kinds=kinds, limit=limit, after=after)

    def get(self, *, owner_id: str, job_id: str) -> Job:
        with self.sessions() as session:
            return self._owned(session, owner_id, job_id)

    def _owned(self, session: Session, owner_id: str, job_id: str) -> Job:
        job = jobs_repo.require_job(session=session, owner_id=owner_id, job_id=job_id)
        if self.kinds is not None and job.kind not in self.kinds:
            raise NotFound(f"No {self.noun} with id '{job_id}'", param=self.param)
        return job

    def events(
        self, *, owner_id: str, job_id: str, after: int | None, limit: int, param: str = "after"
    ) -> tuple[list[JobEvent], bool]:
        """Oldest first from the event `after` (a seq that must be one of this job's events); `limit` 0 only
        checks the job and the cursor (a stream starts from there)."""
        with self.sessions() as session:
            self._owned(session, owner_id, job_id)
            jobs_repo.check_event_cursor(session=session, job_id=job_id, seq=after, param=param)
            if limit == 0:
                return [], False
            return jobs_repo.list_events(session=session, job_id=job_id, after=after, limit=limit)

    def newest_events(
        self, *, owner_id: str, job_id: str, type: str, before: int | None, limit: int
    ) -> tuple[list[JobEvent], bool]:
        """Events of one type, newest first, older than the event `before`."""
        with self.sessions() as session:
            self._owned(session, owner_id, job_id)
            jobs_repo.check_event_cursor(session=session, job_id=job_id, seq=before)
            return jobs_repo.newest_events(session=session, job_id=job_id, type=type, limit=limit, before=before)

    def log_tail(self, *, owner_id: str, job_id: str, limit: int) -> list[JobEvent]:
        """The last `limit` log and status events, oldest first."""
        with self.sessions() as session:
            self._owned(session, owner_id, job_id)
            return jobs_repo.tail_events(session=session, job_id=job_id, types=("log", "status"), limit=limit)

    def latest_event(self, *, job_id: str, type: str) -> JobEvent | None:
        with self.sessions() as session:
            return jobs_repo.latest_event(session=session, job_id=job_id, type=type)

    def cancel(self, *, owner_id: str, job_id: str) -> Job:
        """Ask the job to stop at its next step boundary; Conflict once it has ended. Returns it as it is now."""
        job = self.get(owner_id=owner_id, job_id=job_id)
        if job.status not in ACTIVE_STATUSES or not self.runner.cancel(job_id):
            raise Conflict(f"job {job_id} is already {self.get(owner_id=owner_id, job_id=job_id).status}")
        return self.get(owner_id=owner_id, job_id=job_id)

    def resume(self, *, owner_id: str, job_id: str) -> Job:
        """Re-queue a cancelled or failed job of a resumable kind from its last checkpoint; Conflict otherwise."""
        self.runner.resume(self.get(owner_id=owner_id, job_id=job_id))
        return self.get(owner_id=owner_id, job_id=job_id)
