"""Which GPU a device job's process sees. With several GPUs and `jobs.device_slots` > 1, jobs that run at once get
different GPUs (each process's `CUDA_VISIBLE_DEVICES` names one) instead of all landing on the first; with more
slots than GPUs, the least busy GPU is shared. One GPU, a device pinned as "cuda:N", or the CPU: nothing to choose.

The Ray executor needs none of this: Ray gives each task the GPUs it reserved in `CUDA_VISIBLE_DEVICES` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def visible_gpus(device: str, environ: Mapping[str, str]) -> list[str]:
    """The GPUs device jobs may be spread over: those `CUDA_VISIBLE_DEVICES` lists, else every one torch counts;
    none unless `device` is plain "cuda" (it is resolved already: "auto" became "cuda" or "cpu")."""
    if device != "cuda":
        return []
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    import torch  # the server resolved "auto" with it, so it is imported already

    return [str(index) for index in range(torch.cuda.device_count())]


class GpuAssigner:
    """Picks the GPU with the fewest live jobs on it (the first such in the list on a tie) for the next job.

    Not thread-safe: the executor calls `least_busy` and `hold` for one launch under its own lock."""

    def __init__(self, gpus: list[str]) -> None:
        self.gpus = gpus
        self._held: dict[str, tuple[str, Callable[[], bool]]] = {}  # job id -> (GPU, whether its process lives)

    @property
    def spreads(self) -> bool:
        return len(self.gpus) > 1

    def least_busy(self) -> str:
        self._held = {job: held for job, held in self._held.items() if held[1]()}
        busy = dict.fromkeys(self.gpus, 0)
        for gpu, _ in self._held.values():
            busy[gpu] += 1
        return min(self.gpus, key=lambda gpu: busy[gpu])

    def hold(self, job_id: str, gpu: str, alive: Callable[[], bool]) -> None:
        """Count `gpu` as busy with `job_id` while `alive()` holds."""
        self._held[job_id] = (gpu, alive)
