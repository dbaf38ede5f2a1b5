"""The durable job runner: jobs are rows; a worker loop claims them and runs each attempt on an executor.

Claim: a conditional UPDATE (queued → running) that only one worker can win, so two servers on one database
never run the same job. Each attempt's writes carry (attempt, worker id): a writer that lost the job changes
nothing. Cancel raises a flag the job reads at its step boundaries; a job that does not stop within the grace
period is killed. A job whose holder died is re-queued to resume from its last checkpoint while attempts
remain, else failed with the reason — at start-up (`recover`) and, for other servers' jobs, while serving.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.config import JobSettings
from genfoundry.db.tables import Job, utcnow
from genfoundry.errors import Conflict
from genfoundry.jobs.context import JobCancelled, JobContext, JobRun, apply_finisher, end_run
from genfoundry.jobs.executors import Executor, RunHandle, SubprocessExecutor, ThreadExecutor
from genfoundry.jobs.kinds import JobFunction, JobKind
from genfoundry.jobs.liveness import new_worker_id, orphan_reason
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import new_id
from genfoundry.schemas.jobs import FINAL_STATUSES, JobStatus

__all__ = [
    "Executor",
    "JobCancelled",
    "JobContext",
    "JobFunction",
    "JobRunner",
    "SubprocessExecutor",
    "ThreadExecutor",
]

logger = logging.getLogger(__name__)

# After SIGTERM, how long a job's process gets before SIGKILL.
KILL_AFTER_TERM_S = 3.0


@dataclass
class _Active:
    run: JobRun
    handle: RunHandle
    stop_at: float | None = None  # when the cancel grace period ends
    kill_at: float | None = None  # when SIGTERM gives way to SIGKILL
    stop_reason: str | None = None


class JobRunner:
    """Claims queued jobs of the registered kinds and runs up to `device_slots` of them at once (plus up to
    `cpu_slots` jobs of kinds that use no device, and `server_slots` jobs of kinds run in the server's own process
    on `server_executor`)."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        settings: JobSettings,
        executor: Executor,
        server_executor: Executor | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.executor = executor
        self.server_executor = server_executor
        self.poll_s = poll_s
        self.worker_id = new_worker_id()
        self._kinds: dict[str, JobKind] = {}
        self._active: dict[str, _Active] = {}  # touched by the loop thread only (and by shutdown once it ended)
        self._own: set[str] = set()  # jobs this process started: claimed even when not serving
        self._serving = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0
        self._next_beat = 0.0

    # -- kinds and submission ----------------------------------------------------------------------

    def register(
        self,
        kind: str,
        fn: str,
        *,
        on_finish: str | None = None,
        resumable: bool = False,
        uses_device: bool = True,
        in_server: bool = False,
    ) -> None:
        """`fn` is a "module:function" string, so a job's own process finds it (it gets a `JobContext`).

        `on_finish(session, job)`, also a string, runs once the job reached a final state, whatever it is (to release
        what it held), in the transaction that writes that state: whoever reads the job as ended also sees it
        released. `resumable` kinds can be re-queued after they were cancelled or failed (`resume`), going on from
        their last checkpoint. Kinds with `uses_device=False` (downloads) run in `cpu_slots`, so they never wait
        behind a long training job. `in_server` kinds run on `server_executor` (threads of this process, so they use
        its loaded engines) in `server_slots`.
        """
        if in_server and self.server_executor is None:
            raise ValueError(f"job kind {kind!r} runs in the server, but this runner has no server executor")
        self._kinds[kind] = JobKind(kind, fn, on_finish, resumable, uses_device, in_server)

    def kind(self, name: str) -> JobKind:
        if name not in self._kinds:
            raise ValueError(f"no job function registered for {name!r}")
        return self._kinds[name]

    def submit(
        self,
        *,
        session: Session,
        owner_id: str,
        kind: str,
        params: dict[str, Any],
        max_attempts: int | None = None,
    ) -> Job:
        """Add a queued job in the caller's transaction; it starts once committed and `start`ed (or served)."""
        self.kind(kind)
        return jobs_repo.create_job(
            session=session,
            id=new_id("job"),
            owner_id=owner_id,
            kind=kind,
            status=JobStatus.QUEUED,
            params=params,
            max_attempts=max_attempts or self.settings.max_attempts,
        )

    def start(self, job: Job) -> None:
        """Make sure a worker loop will claim `job` (this process runs it even when it does not serve)."""
        with self._lock:
            self._own.add(job.id)
        self._ensure_loop()

    def serve(self) -> None:
        """Claim every queued job of the registered kinds, not only this process's own (the server does this)."""
        with self._lock:
            self._serving = True
        self._ensure_loop()

    def active_job_ids(self) -> list[str]:
        """Jobs whose attempts this runner is running or still watching (slots in use)."""
        return list(self._active)

    # -- cancel and recovery -----------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Ask an active job to stop; False when it had already ended (cancelling twice is harmless)."""
        with self.sessions() as session:
            if not jobs_repo.request_cancel(session=session, job_id=job_id):
                return False
            job = jobs_repo.get_job(session=session, job_id=job_id)
            # A queued job ends here; a claim cannot race this, as it skips jobs with the cancel flag.
            if jobs_repo.cancel_queued(session=session, job_id=job_id) and job is not None and job.kind in self._kinds:
                apply_finisher(session=session, kind=self._kinds[job.kind], job_id=job_id)
            session.commit()
        self._wake.set()
        return True

    def resume(self, job: Job) -> None:
        """Re-queue a cancelled or failed job of a resumable kind from its last checkpoint, with a fresh budget of
        attempts; Conflict when the job is not in such a state."""
        kind = self.kind(job.kind)
        if not kind.resumable:
            raise Conflict(f"jobs of kind {job.kind} cannot be resumed; start a new one")
        if job.status not in (JobStatus.CANCELLED, JobStatus.FAILED):
            raise Conflict(f"job {job.id} is {job.status}; only a cancelled or failed job can be resumed")
        with self.sessions() as session:
            if not jobs_repo.reopen_job(session=session, job_id=job.id, extra_attempts=self.settings.max_attempts):
                raise Conflict(f"job {job.id} changed state meanwhile; read it again")
            session.commit()
        self.start(job)
        self._wake.set()

    def recover(self) -> list[tuple[str, str]]:
        """At start-up: running jobs whose holder is gone are re-queued or failed; returns (job id, new status)."""
        return self._sweep()

    def _sweep(self) -> list[tuple[str, str]]:
        now = utcnow()
        ended: list[tuple[str, str]] = []
        with self.sessions() as session:
            for job in jobs_repo.running_jobs(session=session):
                if job.worker_id == self.worker_id:
                    continue  # ours: the loop watches its process
                reason = orphan_reason(job, stale_after_s=self.settings.stale_after_s, now=now)
                if reason is None:
                    continue
                status = self._interrupted(session, job, job.attempts, job.worker_id, reason)
                session.commit()
                if status is not None:
                    logger.warning("job %s (%s): %s; now %s", job.id, job.kind, reason, status)
                    ended.append((job.id, status))
        for job_id, status in ended:
            self._release(job_id, status)
        return ended

    def _interrupted(
        self,
        session: Session,
        job: Job,
        attempt: int,
        worker_id: str | None,
        reason: str,
        *,
        refund: bool = False,
    ) -> str | None:
        """A run ended without a final status: cancelled if asked, re-queued while attempts remain, else failed (a
        final status comes with the kind's finisher, in the caller's transaction)."""
        fence: dict[str, Any] = {"session": session, "job_id": job.id, "attempt": attempt, "worker_id": worker_id}
        if not job.cancel_requested and (refund or job.attempts < job.max_attempts):
            return JobStatus.QUEUED if jobs_repo.requeue_run(**fence, reason=reason, refund=refund) else None
        status, error = (
            (JobStatus.CANCELLED, f"cancelled: {reason}") if job.cancel_requested else (JobStatus.FAILED, reason)
        )
        return status if end_run(**fence, kind=self._kinds.get(job.kind), status=status, error=error) else None

    def _release(self, job_id: str, status: str | None) -> None:
        """Forget a job this process started once it has ended."""
        if status in FINAL_STATUSES:
            with self._lock:
                self._own.discard(job_id)

    # -- the worker loop ---------------------------------------------------------------------------

    def _ensure_loop(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="genfoundry-job-worker", daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._tick()
            except Exception:  # e.g. the database briefly unreachable: keep serving, retry next tick
                logger.exception("job worker %s: tick failed", self.worker_id)
            self._wake.wait(self.poll_s)

    def _tick(self) -> None:
        self._reap()
        self._beat()
        self._enforce_cancels()
        self._claim()
        with self._lock:
            serving = self._serving
        if serving and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.settings.stale_after_s / 2
            self._sweep()

    def _reap(self) -> None:
        for job_id, active in list(self._active.items()):
            code = active.handle.exit_code()
            if code is not None:
                del self._active[job_id]
                self._settle(active, active.stop_reason or active.handle.exit_reason(code))

    def _beat(self) -> None:
        # The job's process beats too, but only once it has started (imports can take seconds): the runner's
        # beat keeps a starting job from looking stale to other servers' sweeps.
        if not self._active or time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + self.settings.heartbeat_s
        with self.sessions() as session:
            jobs_repo.touch_held(session=session, worker_id=self.worker_id, job_ids=list(self._active))
            session.commit()

    def _settle(self, active: _Active, reason: str, *, refund: bool = False) -> None:
        """After an attempt ended: end the job with `reason` if the attempt wrote no final status itself."""
        run = active.run
        with self.sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=run.job_id)
            if job is None:
                return
            held = job.status == JobStatus.RUNNING and job.attempts == run.attempt and job.worker_id == run.worker_id
            status: str | None = job.status
            if held:
                status = self._interrupted(session, job, run.attempt, run.worker_id, reason, refund=refund)
                session.commit()
                logger.warning("job %s (%s): %s; now %s", run.job_id, run.kind.name, reason, status)
        self._release(run.job_id, status)

    def _enforce_cancels(self) -> None:
        if not self._active:
            return
        with self.sessions() as session:
            requested = jobs_repo.cancel_requested_ids(session=session, job_ids=list(self._active))
        now = time.monotonic()
        grace = self.settings.cancel_grace_s
        for job_id in requested:
            active = self._active[job_id]
            if active.stop_at is None:
                active.stop_at = now + grace
            elif active.kill_at is None and now >= active.stop_at:
                active.stop_reason = f"it did not stop within {grace:g} s of the cancel request and was killed"
                if active.handle.terminate():
                    active.kill_at = now + KILL_AFTER_TERM_S
                else:  # a thread cannot be killed: end the job now; its later writes are fenced off
                    del self._active[job_id]
                    self._settle(active, f"it did not stop within {grace:g} s of the cancel request")
            elif active.kill_at is not None and now >= active.kill_at:
                active.handle.kill()
                active.kill_at = math.inf

    def _claim(self) -> None:
        with self._lock:
            serving, own = self._serving, sorted(self._own)
        if not serving and not own:
            return
        lanes = {
            "device": self.settings.device_slots,
            "cpu": self.settings.cpu_slots,
            "server": self.settings.server_slots,
        }
        for lane, slots in lanes.items():
            kinds = sorted(name for name, kind in self._kinds.items() if kind.lane == lane)
            while kinds and not self._stop.is_set():
                free = slots - sum(1 for a in self._active.values() if a.run.kind.lane == lane)
                if free <= 0:
                    break
                with self.sessions() as session:
                    candidates = jobs_repo.queued_jobs(
                        session=session, kinds=kinds, limit=free, only=None if serving else own
                    )
                if not candidates:
                    break
                for job_id, kind in candidates:  # a candidate another worker wins drops out of the next query
                    self._claim_one(job_id, kind)

    def _claim_one(self, job_id: str, kind: str) -> None:
        with self.sessions() as session:
            attempt = jobs_repo.claim_job(session=session, job_id=job_id, worker_id=self.worker_id)
            session.commit()
        if attempt is None:
            return
        run = JobRun(job_id=job_id, attempt=attempt, worker_id=self.worker_id, kind=self._kinds[kind])
        executor = self.server_executor if run.kind.in_server and self.server_executor is not None else self.executor
        try:
            handle = executor.launch(run)
        except Exception as exc:
            logger.exception("job %s: could not start", job_id)
            with self.sessions() as session:
                ended = end_run(
                    session=session,
                    kind=run.kind,
                    job_id=job_id,
                    attempt=attempt,
                    worker_id=self.worker_id,
                    status=JobStatus.FAILED,
                    error=f"could not start the job's process: {exc}",
                )
                session.commit()
            self._release(job_id, JobStatus.FAILED if ended else None)
            return
        self._active[job_id] = _Active(run=run, handle=handle)

    # -- shutdown ----------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop claiming; jobs still running are stopped and re-queued (the attempt given back) to resume later."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        active = list(self._active.values())
        self._active.clear()
        # An attempt that already wrote its final status is only tearing down (running its finisher): let it end.
        with self.sessions() as session:
            ended = {
                job_id
                for job_id in (entry.run.job_id for entry in active)
                if (job := jobs_repo.get_job(session=session, job_id=job_id)) is None or job.status in FINAL_STATUSES
            }
        deadline = time.monotonic() + KILL_AFTER_TERM_S
        for entry in active:
            if entry.run.job_id in ended:
                _wait_for_exit(entry.handle, deadline)
        stoppable = [entry for entry in active if entry.handle.exit_code() is None and entry.handle.terminate()]
        deadline = time.monotonic() + KILL_AFTER_TERM_S
        for entry in stoppable:
            _wait_for_exit(entry.handle, deadline)
            if entry.handle.exit_code() is None:
                entry.handle.kill()
                _wait_for_exit(entry.handle, time.monotonic() + KILL_AFTER_TERM_S)
        for entry in active:
            self._settle(entry, "the server stopped while the job ran", refund=True)
        self.executor.shutdown()
        if self.server_executor is not None:
            self.server_executor.shutdown()


def _wait_for_exit(handle: RunHandle, deadline: float) -> None:
    while handle.exit_code() is None and time.monotonic() < deadline:
        time.sleep(0.02)
