"""One attempt of a job, wherever it runs: the context a job function sees, its heartbeat, its final write."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genfoundry.db.tables import Job
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.kinds import JobKind
from genfoundry.repo import jobs as jobs_repo
from genfoundry.schemas.jobs import FINAL_STATUSES, JobStatus

logger = logging.getLogger(__name__)

# A job's process exits with this code when the runner that started it died (nobody could cancel it any more).
EXIT_ORPHANED = 75
CANCEL_POLL_S = 0.5
# Where an attempt runs, named in its first event: the Ray executor sets the node's id; else the host name.
NODE_ENV = "GENFOUNDRY_JOB_NODE"


class JobCancelled(Exception):
    """Raised inside a job function at a step boundary once the job was cancelled (or taken from this run)."""


@dataclass(frozen=True)
class JobRun:
    """One claimed attempt: its writes are fenced by (attempt, worker_id)."""

    job_id: str
    attempt: int
    worker_id: str
    kind: JobKind


class JobContext:
    """What a job function sees: parameters, the checkpoint to resume from, reporting, the cancel flag, and the
    environment (`env`: settings, database, store, catalog) to build what it needs from."""

    def __init__(
        self,
        *,
        env: JobEnv,
        run: JobRun,
        params: dict[str, Any],
        resume_from: str | None,
    ) -> None:
        self.env = env
        self.sessions = env.sessions
        self.run = run
        self.job_id = run.job_id
        self.attempt = run.attempt
        self.params = params
        self.resume_from = resume_from
        self._checked_at = -math.inf
        self._cancel = False
        self._lost = False

    def _held(self, held: bool) -> None:
        if not held:
            self._lost = True

    def progress(self, step: int, total: int, message: str = "") -> None:
        with self.sessions() as session:
            held = jobs_repo.touch_job(
                session=session,
                job_id=self.job_id,
                attempt=self.attempt,
                worker_id=self.run.worker_id,
                step=step,
                total=total,
            )
            if held and message:
                jobs_repo.add_event(
                    session=session,
                    job_id=self.job_id,
                    type="progress",
                    message=message,
                    data={"step": step, "total": total},
                )
            session.commit()
        self._held(held)

    def event(self, type: str, message: str = "", **data: Any) -> None:
        """Append an event (e.g. `sample` with an image URL); log, metrics and checkpoint are shorthands."""
        with self.sessions() as session:
            jobs_repo.add_event(session=session, job_id=self.job_id, type=type, message=message, data=data)
            session.commit()

    def log(self, message: str, **data: Any) -> None:
        self.event("log", message, **data)

    def metrics(self, step: int, **values: float) -> None:
        self.event("metrics", f"step {step}", step=step, **values)

    def checkpoint(self, step: int, path: str, **data: Any) -> None:
        """Record a saved checkpoint (`data`: what else the event carries): the next attempt resumes from the last
        one recorded."""
        with self.sessions() as session:
            held = jobs_repo.set_checkpoint(
                session=session, job_id=self.job_id, attempt=self.attempt, worker_id=self.run.worker_id, checkpoint=path
            )
            if held:
                jobs_repo.add_event(
                    session=session,
                    job_id=self.job_id,
                    type="checkpoint",
                    message=path,
                    data={**data, "step": step, "path": path},
                )
            session.commit()
        self._held(held)

    def cancel_requested(self) -> bool:
        """True once the job was cancelled; reads the database at most every CANCEL_POLL_S seconds."""
        now = time.monotonic()
        if now - self._checked_at >= CANCEL_POLL_S:
            with self.sessions() as session:
                held, cancel = jobs_repo.run_state(
                    session=session, job_id=self.job_id, attempt=self.attempt, worker_id=self.run.worker_id
                )
            self._checked_at = now
            self._cancel = cancel
            self._held(held)
        return self._cancel or self._lost

    def check_cancelled(self) -> None:
        """Call at step boundaries: raises JobCancelled once the job was cancelled."""
        if self.cancel_requested():
            raise JobCancelled

    def beat(self) -> None:
        with self.sessions() as session:
            held = jobs_repo.touch_job(
                session=session, job_id=self.job_id, attempt=self.attempt, worker_id=self.run.worker_id
            )
            session.commit()
        self._held(held)


class Heartbeat:
    """Beats every `interval` seconds while the job runs; ends the process once its runner's process is gone."""

    def __init__(self, ctx: JobContext, *, interval: float, parent_pid: int | None) -> None:
        self.ctx = ctx
        self.interval = interval
        self.parent_pid = parent_pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{ctx.job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        next_beat = time.monotonic() + self.interval
        while not self._stop.wait(min(self.interval, 1.0)):
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                # The runner died: no one can cancel or watch this process, so end it without a final status and
                # let the next runner's start-up recovery resume the job from its last checkpoint.
                logger.error("job %s: the runner's process is gone; stopping", self.ctx.job_id)
                os._exit(EXIT_ORPHANED)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.interval
                try:
                    self.ctx.beat()
                except Exception:  # a busy database must not stop the beats; the next one retries
                    logger.exception("job %s: heartbeat failed", self.ctx.job_id)


def end_run(
    *,
    session: Session,
    kind: JobKind | None,
    job_id: str,
    attempt: int,
    worker_id: str | None,
    status: str,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """running → a final status and the kind's finisher, in the caller's transaction (so nobody sees the job ended
    before what it held is released); False when the run had lost the job (nothing written)."""
    fence: dict[str, Any] = {"session": session, "job_id": job_id, "attempt": attempt, "worker_id": worker_id}
    if not jobs_repo.finish_run(**fence, status=status, error=error, result=result):
        return False
    if kind is not None:
        apply_finisher(session=session, kind=kind, job_id=job_id)
    return True


def apply_finisher(*, session: Session, kind: JobKind, job_id: str) -> None:
    """Run the kind's finisher on the job's final row in the caller's transaction, the one that made it final.

    It runs in a savepoint: a finisher that fails is logged and undone, and the job's final status stands.
    """
    try:
        finisher = kind.resolve_finisher()
    except Exception:
        logger.exception("job %s: the finisher of %s cannot be loaded", job_id, kind.name)
        return
    if finisher is None:
        return
    job = session.scalar(select(Job).where(Job.id == job_id).execution_options(populate_existing=True))
    if job is None or job.status not in FINAL_STATUSES:
        return
    try:
        with session.begin_nested():
            finisher(session, job)
    except Exception:
        logger.exception("job %s: the finisher of %s failed", job_id, kind.name)


def run_attempt(*, env: JobEnv, run: JobRun, heartbeat_s: float, parent_pid: int | None) -> bool:
    """Run one claimed attempt to a final status; False when the run had lost the job (nothing written)."""
    sessions = env.sessions
    with sessions() as session:
        job = jobs_repo.get_job(session=session, job_id=run.job_id)
        if job is None:
            return False
        params, resume_from = dict(job.params), job.resume_from
    ctx = JobContext(env=env, run=run, params=params, resume_from=resume_from)
    node = os.environ.get(NODE_ENV) or socket.gethostname()
    ctx.log(
        f"attempt {run.attempt} started in process {os.getpid()} on {node}",
        attempt=run.attempt,
        pid=os.getpid(),
        node=node,
        resume_from=resume_from,
    )
    heartbeat = Heartbeat(ctx, interval=heartbeat_s, parent_pid=parent_pid)
    heartbeat.start()
    status, error, result = JobStatus.SUCCEEDED, None, None
    try:
        fn = run.kind.resolve_function()
        result = fn(ctx)
        json.dumps(result)  # stored as JSON: an unstorable result fails the job here, not the final write
    except JobCancelled:
        status, result = JobStatus.CANCELLED, None
    except Exception as exc:
        logger.exception("job %s (%s) failed", run.job_id, run.kind.name)
        status, error, result = JobStatus.FAILED, str(exc) or type(exc).__name__, None
    finally:
        heartbeat.stop()
    with sessions() as session:
        written = end_run(
            session=session,
            kind=run.kind,
            job_id=run.job_id,
            attempt=run.attempt,
            worker_id=run.worker_id,
            status=status,
            error=error,
            result=result,
        )
        session.commit()
    if not written:
        logger.warning("job %s: attempt %d lost the job before it ended; nothing written", run.job_id, run.attempt)
    return written
