"""How many intra-op threads each torch user of the machine gets, so that together they never oversubscribe the cores.

The torch users that may run at once: the image engine, the text engine, the router's encoder (this process) and
each job process on a device slot (training, captioning). Left alone, every one of them starts one torch thread per
core: on a 2-core machine shared with a training job, two threads per op took 27-67 s per tiny image against
1.4-1.9 s with one, because threads of one op wait for each other while another user holds the cores. Each user gets
an equal share of the cores (at least one thread); what does not divide evenly goes to the image engine, the
heaviest per request. `GENFOUNDRY_TORCH_THREADS` gives every user that count instead.

torch's thread count is per calling thread (OpenMP's setting): an engine sets it on its own worker thread
(`set_torch_threads`), and a job process gets it through OMP_NUM_THREADS in its environment.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from genfoundry.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadPlan:
    """Intra-op threads per torch user; `cores` is what the plan was made for."""

    image: int
    text: int
    router: int
    job: int  # per job process
    cores: int
    overridden: bool = False

    def summary(self) -> str:
        how = "GENFOUNDRY_TORCH_THREADS" if self.overridden else f"{self.cores} cores shared"
        return (
            f"image engine {self.image}, text engine {self.text}, router encoder {self.router}, "
            f"each job process {self.job} ({how})"
        )


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_threads(*, cores: int, job_processes: int, override: int | None = None) -> ThreadPlan:
    """Threads for the image engine, the text engine, the router's encoder and each of `job_processes` job
    processes: an equal share of `cores` each (the remainder to the image engine), at least one; `override` for
    all of them when set."""
    if cores < 1 or job_processes < 0:
        raise ValueError(f"need cores >= 1 and job_processes >= 0, got {cores} and {job_processes}")
    if override is not None:
        if override < 1:
            raise ValueError(f"torch threads must be at least 1, got {override}")
        return ThreadPlan(override, override, override, override, cores=cores, overridden=True)
    users = 3 + job_processes
    share, spare = divmod(cores, users)
    if share == 0:  # more users than cores: one thread each is the least torch can run with
        return ThreadPlan(1, 1, 1, 1, cores=cores)
    return ThreadPlan(image=share + spare, text=share, router=share, job=share, cores=cores)


def server_thread_plan(settings: Settings) -> ThreadPlan:
    """The plan for a server with `settings` (a job process per device slot), logged once at start-up."""
    plan = plan_threads(
        cores=available_cores(), job_processes=settings.jobs.device_slots, override=settings.torch_threads
    )
    logger.info("torch threads: %s", plan.summary())
    return plan


def set_torch_threads(threads: int) -> int:
    """Give the calling thread `threads` torch intra-op threads; returns the count torch reports back."""
    import torch

    torch.set_num_threads(threads)
    return torch_threads()


def torch_threads() -> int:
    """The calling thread's torch intra-op threads."""
    import torch

    return int(torch.get_num_threads())
