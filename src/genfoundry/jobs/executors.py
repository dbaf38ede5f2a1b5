"""Executors run one claimed attempt and hand back a handle to watch and stop it.

The interface is two calls (`launch(run)`, `shutdown()`) and a handle (`exit_code`, `terminate`, `kill`,
`exit_reason`), so a distributed engine can plug in beside the local subprocess and thread executors.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Protocol

from genfoundry.config import Settings
from genfoundry.jobs.context import JobRun, run_attempt
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.gpu_assignment import GpuAssigner, visible_gpus
from genfoundry.jobs.liveness import exit_reason

logger = logging.getLogger(__name__)

# The job's process reads the server's settings from here, so it sees exactly what the server saw.
SETTINGS_ENV = "GENFOUNDRY_WORKER_SETTINGS"


class RunHandle(Protocol):
    pid: int | None

    def exit_code(self) -> int | None:
        """None while the attempt runs; then 0, an error code, or minus the signal that ended it."""
        ...

    def terminate(self) -> bool:
        """Ask it to stop now; False when this executor cannot stop it."""
        ...

    def kill(self) -> bool: ...

    def exit_reason(self, code: int) -> str: ...


class Executor(Protocol):
    def launch(self, run: JobRun) -> RunHandle: ...

    def shutdown(self) -> None: ...


class ThreadHandle:
    """An attempt on a thread of this process: it cannot be killed, only cancelled at a step boundary."""

    def __init__(self) -> None:
        self.pid: int | None = os.getpid()
        self.code: int | None = None
        self.error = ""

    def exit_code(self) -> int | None:
        return self.code

    def terminate(self) -> bool:
        return False

    def kill(self) -> bool:
        return False

    def exit_reason(self, code: int) -> str:
        return f"the job's thread stopped without a final status: {self.error}"


class ThreadExecutor:
    """Runs each attempt on a thread of this process: starts at once, but a crash takes the process down."""

    def __init__(self, *, env: JobEnv, heartbeat_s: float) -> None:
        self.env = env
        self.heartbeat_s = heartbeat_s

    def launch(self, run: JobRun) -> RunHandle:
        handle = ThreadHandle()

        def target() -> None:
            try:
                run_attempt(env=self.env, run=run, heartbeat_s=self.heartbeat_s, parent_pid=None)
            except BaseException as exc:  # e.g. the database went away during the final write
                logger.exception("job %s: attempt %d crashed", run.job_id, run.attempt)
                handle.error = str(exc) or type(exc).__name__
                handle.code = 1
            else:
                handle.code = 0

        threading.Thread(target=target, name=f"job-{run.job_id}", daemon=True).start()
        return handle

    def shutdown(self) -> None:
        """Threads still running were re-queued by the runner; their writes are fenced off, so leave them."""


class ProcessHandle:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.pid: int | None = process.pid
        self.log_path = log_path

    def exit_code(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> bool:
        self.process.terminate()  # a no-op once the process has been reaped
        return True

    def kill(self) -> bool:
        self.process.kill()
        return True

    def exit_reason(self, code: int) -> str:
        reason = exit_reason(code)
        last = last_log_line(self.log_path)
        return f"{reason}: {last}" if code > 0 and last else reason


def last_log_line(path: Path) -> str:
    """The last line of a job's log (what it said as it died), or "" when there is none."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            lines = deque((line.strip() for line in handle.read().decode(errors="replace").splitlines()), maxlen=1)
    except OSError:
        return ""
    return lines[0][:500] if lines else ""


class SubprocessExecutor:
    """Runs each attempt as `python -m genfoundry.jobs.worker`, so a crash or out-of-memory ends only the job.

    The process gets its own session (a Ctrl-C at the server's terminal does not reach it) and writes its output
    to `<log_dir>/<job id>.log`. With several GPUs, device jobs that run at once each see a different one
    (gpu_assignment.py).
    """

    def __init__(self, *, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.gpus = GpuAssigner(visible_gpus(settings.device, os.environ))
        self._launching = threading.Lock()

    def launch(self, run: JobRun) -> RunHandle:
        args = [sys.executable, *worker_args(run)]
        env = {**os.environ, **worker_env(self.settings)}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{run.job_id}.log"
        with log_path.open("ab") as log, self._launching:
            gpu = self.gpus.least_busy() if run.kind.lane == "device" and self.gpus.spreads else None
            if gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = gpu
                log.write(f"genfoundry: this attempt runs on GPU {gpu} (CUDA_VISIBLE_DEVICES)\n".encode())
                log.flush()
            process = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            if gpu is not None:
                self.gpus.hold(run.job_id, gpu, lambda: process.poll() is None)
        return ProcessHandle(process, log_path)

    def shutdown(self) -> None:
        """Nothing to release: the runner stops and reaps the processes it launched."""


def worker_args(run: JobRun) -> list[str]:
    """The job's process's command line after the interpreter: `-m genfoundry.jobs.worker JOB ATTEMPT WORKER …`."""
    args = ["-m", "genfoundry.jobs.worker", run.job_id, str(run.attempt), run.worker_id]
    args += ["--kind", run.kind.name, "--function", run.kind.function]
    if run.kind.on_finish is not None:
        args += ["--on-finish", run.kind.on_finish]
    return args


def worker_env(settings: Settings) -> dict[str, str]:
    """What the job's process gets in its environment beside what it inherits: the server's settings and its share
    of the cores."""
    env = {SETTINGS_ENV: settings.model_dump_json()}
    threads = settings.torch_threads
    if threads is not None:  # the job's share of the cores (the server decides it): torch reads it at import
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return env


def make_executor(env: JobEnv) -> Executor:
    """The executor `env.settings.jobs.executor` names."""
    settings = env.settings
    if settings.jobs.executor == "thread":
        return ThreadExecutor(env=env, heartbeat_s=settings.jobs.heartbeat_s)
    if settings.jobs.executor == "ray":
        from genfoundry.jobs.ray_executor import RayExecutor  # ray is an optional extra, imported only when chosen

        return RayExecutor(settings=settings)
    return SubprocessExecutor(settings=settings, log_dir=settings.home / "logs" / "jobs")
