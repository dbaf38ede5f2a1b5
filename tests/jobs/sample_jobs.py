"""Test-only job kinds, importable by dotted path so a job's own process can find them, and a stand-in server."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from genfoundry.catalog import open_catalog
from genfoundry.config import JobSettings, Settings
from genfoundry.db.session import make_engine, make_session_factory, upgrade_database
from genfoundry.db.tables import Job
from genfoundry.jobs.context import JobContext
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.executors import make_executor
from genfoundry.jobs.runner import JobRunner
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo import users as users_repo
from genfoundry.storage import open_store

HERE = "tests.jobs.sample_jobs"


def count(ctx: JobContext) -> dict[str, Any]:
    """Count to `n`, a step every `step_s`; a checkpoint file every `every` steps; resume from the last one.

    Side effects a test can count: `run-<job>-<attempt>` once per attempt, a line "attempt step" per step.
    """
    out = Path(ctx.params["out"])
    n, step_s, every = int(ctx.params["n"]), float(ctx.params.get("step_s", 0)), int(ctx.params.get("every", 0))
    (out / f"run-{ctx.job_id}-{ctx.attempt}").touch()
    start = int(Path(ctx.resume_from).read_text()) if ctx.resume_from else 0
    for step in range(start + 1, n + 1):
        ctx.check_cancelled()
        time.sleep(step_s)
        with (out / f"steps-{ctx.job_id}.log").open("a") as log:
            log.write(f"{ctx.attempt} {step}\n")
        ctx.progress(step, n, f"step {step}")
        if every and step % every == 0:
            checkpoint = out / f"ckpt-{ctx.job_id}-{step}"
            checkpoint.write_text(str(step))
            ctx.checkpoint(step, str(checkpoint))
    time.sleep(float(ctx.params.get("tail_s", 0)))  # wrapping up (saving the result) without checking for cancel
    return {"counted": n, "started_at": start}


def stubborn(ctx: JobContext) -> dict[str, Any]:
    """Ignores cancel requests and SIGTERM: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.log("ignoring cancel")
    for step in range(10_000):
        time.sleep(0.05)
        ctx.progress(step, 10_000)
    return {}


def boom(ctx: JobContext) -> dict[str, Any]:
    ctx.log("about to fail")
    raise RuntimeError("the flux capacitor broke")


def exit_hard(ctx: JobContext) -> dict[str, Any]:
    """Ends its process with no final status, the way a crashing native library would."""
    print("giving up hard", file=sys.stderr, flush=True)
    os._exit(3)


def torch_threads(ctx: JobContext) -> dict[str, Any]:
    """Reports the torch intra-op threads the job's process runs with."""
    import torch

    return {"torch_threads": torch.get_num_threads()}


def visible_gpus(ctx: JobContext) -> dict[str, Any]:
    """Reports the GPUs its process was given; stays `hold_s` so jobs started together overlap."""
    time.sleep(float(ctx.params.get("hold_s", 0)))
    return {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def record_finish(session: Session, job: Job) -> None:
    """A finisher: an event in the job's final transaction, so a test can see it ran (and how often)."""
    jobs_repo.add_event(session=session, job_id=job.id, type="log", message="finisher", data={"saw": job.status})


def failing_finish(session: Session, job: Job) -> None:
    """A finisher that writes, then fails: its write must be undone, the job's final status kept."""
    record_finish(session, job)
    raise RuntimeError("the finisher broke")


def job_settings(home: Path, **jobs: Any) -> Settings:
    defaults: dict[str, Any] = {"heartbeat_s": 0.2, "stale_after_s": 1.0, "cancel_grace_s": 1.0, "device_slots": 2}
    return Settings(home=home, device="cpu", jobs=JobSettings(**(defaults | jobs)))


@dataclass
class Harness:
    runner: JobRunner
    engine: Engine

    def close(self) -> None:
        self.runner.shutdown()
        self.engine.dispose()


def make_runner(settings: Settings) -> Harness:
    """A runner on the settings' database with the sample kinds registered by dotted path."""
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    env = JobEnv(settings=settings, sessions=sessions, store=open_store(settings), catalog=open_catalog(settings))
    runner = JobRunner(sessions=sessions, settings=settings.jobs, executor=make_executor(env), poll_s=0.1)
    for name in ("count", "stubborn", "boom", "exit_hard", "torch_threads", "visible_gpus"):
        runner.register(name, f"{HERE}:{name}", on_finish=f"{HERE}:record_finish")
    runner.register("visible_gpus_no_device", f"{HERE}:visible_gpus", uses_device=False)
    runner.register("missing", "tests.jobs.no_such_module:run", on_finish=f"{HERE}:record_finish")
    runner.register("count_bad_finish", f"{HERE}:count", on_finish=f"{HERE}:failing_finish")
    runner.register("download", f"{HERE}:count", on_finish=f"{HERE}:record_finish", uses_device=False)
    return Harness(runner, engine)


def run_jobs(harness: Harness, kinds: list[str], params: dict[str, Any], *, timeout: float = 120) -> list[Job]:
    """Submits a job of each kind (owned by the local user), starts them all and waits for each to succeed; their
    final rows, in order."""
    with harness.runner.sessions() as session:
        owner = users_repo.get_or_create_local_user(session=session).id
        jobs = [harness.runner.submit(session=session, owner_id=owner, kind=k, params=params) for k in kinds]
        session.commit()
    for job in jobs:
        harness.runner.start(job)
    finished = []
    deadline = time.monotonic() + timeout
    for job in jobs:
        while True:  # the job's row is the only way to see a job process finish
            with harness.runner.sessions() as session:
                found = jobs_repo.get_job(session=session, job_id=job.id)
            assert found is not None
            if found.status in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, f"job still {found.status}"
            time.sleep(0.05)
        assert (found.status, found.error) == ("succeeded", None), found.error
        finished.append(found)
    return finished


def serve(home: str) -> None:
    """A stand-in server process: serves the sample kinds until it is killed."""
    harness = make_runner(job_settings(Path(home)))
    harness.runner.serve()
    while True:
        time.sleep(1)
