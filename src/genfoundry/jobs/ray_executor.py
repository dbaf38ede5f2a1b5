"""The Ray executor: each attempt runs as a Ray task on a cluster node, as the same worker process as locally.

The task asks for its kind's resources (settings `ray`), starts `python -m genfoundry.jobs.worker …` on its node
with the server's settings in the environment and the node's id in `GENFOUNDRY_JOB_NODE`, logs to
`<home>/logs/jobs/<job id>.log` on that node, and returns the process's exit code and last log line. The worker
reports through the shared database and store, as a local one does. It stops when the Ray worker running the task
dies (it watches its parent), so a lost node ends the attempt and the runner re-queues the job to resume from its
last checkpoint on another node. `ray` is an optional extra: only this module imports it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, TaskCancelledError

from genfoundry.config import RaySettings, Settings
from genfoundry.errors import GenfoundryError
from genfoundry.jobs.context import NODE_ENV, JobRun
from genfoundry.jobs.executors import last_log_line, worker_args, worker_env
from genfoundry.jobs.kinds import JobKind
from genfoundry.jobs.liveness import exit_reason

logger = logging.getLogger(__name__)

# Resource names `ray.remote(...).options` takes itself; any other name is a custom resource.
RAY_OPTIONS = frozenset({"num_cpus", "num_gpus", "memory"})
# After the task is cancelled, how long the job's process gets to stop before it is killed.
STOP_WAIT_S = 3.0
# What a handle reports when Ray lost the task (its worker or node died): killed, like a process by SIGKILL.
LOST_CODE = -9


class RayUnavailable(GenfoundryError):
    """The Ray cluster the settings name does not answer."""

    status_code = 503
    error_type = "server_error"
    code = "ray_unavailable"


def run_worker(job_id: str, args: list[str], env: dict[str, str], log_dir: str) -> tuple[int, str]:
    """The task's body, on a node: the worker process to its end; (exit code, its log's last line)."""
    log_path = Path(log_dir) / f"{job_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    node = ray.get_runtime_context().get_node_id()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env, NODE_ENV: node},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        code = process.wait()
    except BaseException:  # cancelled (Ray raises KeyboardInterrupt here): the job's process stops with the task
        process.terminate()
        try:
            process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    return code, last_log_line(log_path)


class RayHandle:
    """An attempt running as a Ray task: its process is on another node, so it has no pid here."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref
        self.pid: int | None = None
        self._code: int | None = None
        self._reason = ""

    def exit_code(self) -> int | None:
        if self._code is None:
            ready, _ = ray.wait([self.ref], timeout=0)
            if ready:
                self._settle()
        return self._code

    def _settle(self) -> None:
        try:
            self._code, last = ray.get(self.ref)
        except TaskCancelledError:
            self._code, self._reason = -15, "the job's Ray task was cancelled"
        except RayError as exc:  # the Ray worker crashed or its node died
            first = str(exc).strip().splitlines()
            self._code = LOST_CODE
            self._reason = f"the job's Ray task was lost ({type(exc).__name__}: {first[0] if first else ''})"
        else:
            self._reason = f"{exit_reason(self._code)}: {last}" if self._code > 0 and last else ""

    def terminate(self) -> bool:
        ray.cancel(self.ref, force=False)
        return True

    def kill(self) -> bool:
        ray.cancel(self.ref, force=True)
        return True

    def exit_reason(self, code: int) -> str:
        return self._reason or exit_reason(code)


class RayExecutor:
    """Runs each attempt as a Ray task asking for its kind's resources; connects (or starts Ray) when built."""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.ray = settings.ray
        connect(self.ray)
        self._task = ray.remote(run_worker)
        self._log_dir = str(settings.home / "logs" / "jobs")
        self._warned_no_gpu = False

    def launch(self, run: JobRun) -> RayHandle:
        options = self.resources(run.kind)
        name = f"genfoundry-{run.job_id}-{run.attempt}"
        # A lost attempt is not retried by Ray: the runner re-queues the job, which resumes from its checkpoint.
        task = self._task.options(**options, name=name, max_retries=0, retry_exceptions=False)
        return RayHandle(task.remote(run.job_id, worker_args(run), worker_env(self.settings), self._log_dir))

    def resources(self, kind: JobKind) -> dict[str, Any]:
        """The `.options` a job of `kind` asks for: its kind's resources, else its lane's."""
        lane = self.ray.device_resources if kind.lane == "device" else self.ray.cpu_resources
        wanted = dict(self.ray.kind_resources.get(kind.name, lane))
        if wanted.get("num_gpus") and not ray.cluster_resources().get("GPU"):
            if not self._warned_no_gpu:
                logger.warning("the Ray cluster has no GPU: jobs that use a device ask for CPUs only")
                self._warned_no_gpu = True
            del wanted["num_gpus"]
        options: dict[str, Any] = {name: amount for name, amount in wanted.items() if name in RAY_OPTIONS}
        custom = {name: amount for name, amount in wanted.items() if name not in RAY_OPTIONS}
        if custom:
            options["resources"] = custom
        return options

    def shutdown(self) -> None:
        """Disconnect; a local Ray instance the server started stops with it."""
        ray.shutdown()


def connect(settings: RaySettings) -> None:
    """Join the cluster at `settings.address` (or start a local instance for ""): RayUnavailable, naming the address,
    within `connect_timeout_s` when it does not answer."""
    address = settings.address.strip()
    if address and address != "auto":
        probe(address, settings.connect_timeout_s)
    dashboard = None if address else False  # a local instance runs no dashboard
    try:
        ray.init(address=address or None, namespace="genfoundry", log_to_driver=False, include_dashboard=dashboard)
    except Exception as exc:  # e.g. "auto" with no cluster on this machine
        ray.shutdown()  # whatever the failed attempt started, so this process can still exit
        raise RayUnavailable(f"cannot connect to the Ray cluster at {address or 'a local instance'}: {exc}") from exc
    logger.info("jobs run on the Ray cluster at %s: %s", address or "a local instance", ray.cluster_resources())


def probe(address: str, timeout_s: float) -> None:
    """RayUnavailable unless something listens at `address` ("host:port" or "ray://host:port")."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise RayUnavailable(f"the Ray address {address!r} is not 'auto', 'host:port' or 'ray://host:port'")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayUnavailable(f"the Ray cluster at {address} does not answer: {exc}") from exc
