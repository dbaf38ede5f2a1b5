"""The job runner: rows in the database, work on an executor, progress and events as it goes.

Executors sit behind a small interface (`submit(job_id, fn)` and `shutdown()`); this module ships the in-process
thread executor. The durable subprocess executor of the training issue plugs in behind the same calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import Job, utcnow
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import new_id

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job function at a step boundary after cancel() was called."""


class JobContext:
    """What a job function sees: its parameters, progress and log reporting, and the cancel flag."""

    def __init__(self, runner: JobRunner, job_id: str, params: dict[str, Any]) -> None:
        self.runner = runner
        self.job_id = job_id
        self.params = params

    def progress(self, step: int, total: int, message: str = "") -> None:
        with self.runner.sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=self.job_id)
            if job is not None:
                job.progress_step, job.progress_total, job.heartbeat_at = step, total, utcnow()
                if message:
                    jobs_repo.add_event(
                        session=session,
                        job_id=self.job_id,
                        type="progress",
                        message=message,
                        data={"step": step, "total": total},
                    )
                session.commit()

    def log(self, message: str, **data: Any) -> None:
        with self.runner.sessions() as session:
            jobs_repo.add_event(session=session, job_id=self.job_id, type="log", message=message, data=data)
            session.commit()

    def check_cancelled(self) -> None:
        if self.runner.is_cancelled(self.job_id):
            raise JobCancelled


JobFunction = Callable[[JobContext], dict[str, Any]]


class Executor(Protocol):
    def submit(self, job_id: str, fn: Callable[[], None]) -> None: ...

    def shutdown(self) -> None: ...


class ThreadExecutor:
    """Runs jobs on a few threads of this process (dataset downloads and captioning)."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genfoundry-job")

    def submit(self, job_id: str, fn: Callable[[], None]) -> None:
        self._pool.submit(fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class JobRunner:
    def __init__(self, *, sessions: sessionmaker[Session], executor: Executor) -> None:
        self.sessions = sessions
        self.executor = executor
        self._functions: dict[str, JobFunction] = {}
        self._finishers: dict[str, Callable[[Job], None]] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def register(self, kind: str, fn: JobFunction, *, on_finish: Callable[[Job], None] | None = None) -> None:
        """`on_finish` runs after the job reaches a final state, whatever it is (to release what it held)."""
        self._functions[kind] = fn
        if on_finish is not None:
            self._finishers[kind] = on_finish

    def fail_orphans(self) -> list[str]:
        """At start-up: jobs a dead process left active fail with the reason (they are not resumed yet)."""
        with self.sessions() as session:
            ids = jobs_repo.fail_orphaned_jobs(session=session, reason="the server stopped while the job ran")
            for job_id in ids:
                jobs_repo.add_event(session=session, job_id=job_id, type="status", message="failed: server stopped")
            session.commit()
        return ids

    def submit(self, *, session: Session, owner_id: str, kind: str, params: dict[str, Any]) -> Job:
        """Add a queued job in the caller's transaction; it starts once the caller calls `start`."""
        if kind not in self._functions:
            raise ValueError(f"no job function registered for {kind!r}")
        return jobs_repo.create_job(
            session=session, id=new_id("job"), owner_id=owner_id, kind=kind, status="queued", params=params
        )

    def start(self, job: Job) -> None:
        self.executor.submit(job.id, lambda: self._run(job.id))

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancelled.add(job_id)

    def is_cancelled(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancelled

    def _set(self, job_id: str, **fields: Any) -> Job | None:
        with self.sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=job_id)
            if job is None:
                return None
            for name, value in fields.items():
                setattr(job, name, value)
            if "status" in fields:
                jobs_repo.add_event(session=session, job_id=job_id, type="status", message=fields["status"])
            session.commit()
            session.expunge(job)
            return job

    def _run(self, job_id: str) -> None:
        job = self._set(job_id, status="running", started_at=utcnow(), heartbeat_at=utcnow(), attempts=1)
        if job is None:
            return
        fn = self._functions[job.kind]
        try:
            result = fn(JobContext(self, job_id, dict(job.params)))
        except JobCancelled:
            final = self._set(job_id, status="cancelled", finished_at=utcnow())
        except Exception as exc:
            logger.exception("job %s (%s) failed", job_id, job.kind)
            final = self._set(job_id, status="failed", error=str(exc) or type(exc).__name__, finished_at=utcnow())
        else:
            final = self._set(job_id, status="succeeded", result=result, finished_at=utcnow())
        finally:
            with self._lock:
                self._cancelled.discard(job_id)
        finisher = self._finishers.get(job.kind)
        if finisher is not None and final is not None:
            finisher(final)

    def shutdown(self) -> None:
        self.executor.shutdown()
