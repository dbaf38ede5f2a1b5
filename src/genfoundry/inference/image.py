"""The image engine: text-to-image and image-to-image on catalog bases, with LoRA adapters per request.

Each base is loaded once (on its own worker thread, never on the event loop) and kept in an LRU under a
memory budget. Requests for a base wait in that base's bounded queue; its worker runs compatible requests
as one pipeline call (micro-batching) and switches adapters in place between calls.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid, Overloaded
from genfoundry.inference.batching import BatchWorker, QueueFull, WorkerClosed
from genfoundry.inference.loader import (
    BaseModelSpec,
    estimate_pipeline_bytes,
    estimate_weight_files_bytes,
    load_pipeline,
)

if TYPE_CHECKING:
    from PIL.Image import Image

    from genfoundry.inference.image_runner import ImageRunner

__all__ = ["BaseModelSpec", "GeneratedImage", "ImageEngine", "ImageJob", "LoraSpec"]

logger = logging.getLogger(__name__)

_SEED_MIN, _SEED_MAX = -(2**63), 2**64 - 1


@dataclass(frozen=True)
class LoraSpec:
    """A diffusers-format LoRA file; `id` is its registry id (adapters are cached per id and path)."""

    id: str
    path: str
    weight: float = 1.0


@dataclass(frozen=True)
class ImageJob:
    """One request: `len(seeds)` images; `init_image` makes it image-to-image with `strength`."""

    base: BaseModelSpec
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    steps: int
    guidance_scale: float
    seeds: tuple[int, ...]
    loras: tuple[LoraSpec, ...] = ()
    init_image: Image | None = None
    strength: float = 0.8


@dataclass(frozen=True)
class GeneratedImage:
    image: Image
    seed: int
    generation_time_s: float


@dataclass(eq=False)
class _Slot:
    """A base in the LRU: its worker, and once loaded its runner and measured size."""

    spec: BaseModelSpec
    worker: BatchWorker[ImageJob, list[GeneratedImage]] | None = None
    runner: ImageRunner | None = None
    nbytes: int = 0


def _batch_key(job: ImageJob) -> Hashable:
    """Jobs with equal keys can share one pipeline call (prompts and seeds may differ)."""
    img2img = job.init_image is not None
    return (
        img2img,
        job.width,
        job.height,
        job.steps,
        float(job.guidance_scale),
        float(job.strength) if img2img else None,
        job.negative_prompt is None and job.base.family != "flux",  # flux ignores negative prompts
        tuple((lora.id, lora.path, float(lora.weight)) for lora in job.loras),
    )


def _validate(job: ImageJob) -> None:
    """Reject what would fail a whole batch; diffusers' own checks (ValueError) also become Invalid."""
    if not job.seeds:
        raise Invalid("a job needs at least one seed (one per image)", param="n")
    if any(not isinstance(s, int) or not _SEED_MIN <= s <= _SEED_MAX for s in job.seeds):
        raise Invalid(f"seeds must be integers in [{_SEED_MIN}, {_SEED_MAX}]", param="seed")
    if job.width < 8 or job.height < 8:
        raise Invalid(f"width and height must be at least 8, got {job.width}x{job.height}", param="size")
    if job.steps < 1:
        raise Invalid(f"steps must be at least 1, got {job.steps}", param="steps")
    if job.init_image is not None and not 0.0 < job.strength <= 1.0:
        raise Invalid(f"strength must be in (0, 1], got {job.strength}", param="strength")
    ids = [lora.id for lora in job.loras]
    if len(set(ids)) != len(ids):
        raise Invalid("each adapter may appear once per request", param="loras")


class ImageEngine:
    """Serves `ImageJob`s: one worker thread and bounded queue per loaded base, LRU under a byte budget."""

    def __init__(
        self,
        *,
        device: str,
        dtype: str,
        memory_budget_bytes: int,
        max_queue: int,
        max_batch_size: int,
        batch_timeout_s: float,
    ) -> None:
        if memory_budget_bytes < 0:
            raise ValueError(f"memory_budget_bytes must be >= 0, got {memory_budget_bytes}")
        if max_queue < 1 or max_batch_size < 1 or batch_timeout_s < 0:
            raise ValueError(
                "need max_queue >= 1, max_batch_size >= 1 and batch_timeout_s >= 0; got "
                f"{max_queue}, {max_batch_size}, {batch_timeout_s}"
            )
        self.device = device
        self.dtype = dtype
        self.memory_budget_bytes = memory_budget_bytes
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self._lock = threading.Lock()  # guards _slots, _closed and the counters
        self._slots: OrderedDict[str, _Slot] = OrderedDict()  # least recently used first
        self._closed = False
        self._resolved_device: str | None = None
        self._counters = {
            "requests_served": 0,
            "batches_served": 0,
            "images_served": 0,
            "failed_batches": 0,
            "loads": 0,
            "evictions": 0,
        }

    # -- public API --------------------------------------------------------------------------------

    async def generate(self, job: ImageJob) -> list[GeneratedImage]:
        """Generate `len(job.seeds)` images; raises `Overloaded` at once when the base's queue is full."""
        return await asyncio.wrap_future(self._submit(job))

    def generate_sync(self, job: ImageJob) -> list[GeneratedImage]:
        """`generate` for in-process CLI use: same queue and worker, blocking the calling thread."""
        return self._submit(job).result()

    def unload_adapter(self, adapter_id: str, *, wait: bool = False) -> None:
        """Remove an adapter from every loaded base (it was deleted); done on each base's worker thread."""
        with self._lock:
            slots = list(self._slots.values())
        futures: list[Future[None]] = []
        for slot in slots:
            assert slot.worker is not None
            try:
                futures.append(slot.worker.call_soon(partial(self._unload_on, slot, adapter_id)))
            except WorkerClosed:
                continue
        if wait:
            wait_futures(futures)

    def unload_base(self, base_id: str) -> None:
        """Unload a base (it was deleted): requests still queued for it fail, the running batch may finish."""
        with self._lock:
            slot = self._slots.pop(base_id, None)
        if slot is not None:
            self._retire(slot)
            self._free_memory()

    def stats(self) -> dict[str, Any]:
        """Loaded bases with their bytes, queue depths and adapters, plus totals (exposed in /metrics)."""
        with self._lock:
            slots = list(self._slots.values())
            counters = dict(self._counters)
        models: dict[str, Any] = {}
        for slot in slots:
            assert slot.worker is not None
            runner = slot.runner
            models[slot.spec.id] = {
                "family": slot.spec.family,
                "state": "loaded" if runner is not None else "loading",
                "bytes": slot.nbytes,
                "queue_depth": slot.worker.queue_depth,
                "adapters": list(runner.adapter_ids) if runner is not None else [],
            }
        return {
            "device": self._resolved_device or self.device,
            "memory_budget_bytes": self.memory_budget_bytes,
            "loaded_bytes": sum(slot.nbytes for slot in slots),
            "loaded": [model_id for model_id, info in models.items() if info["state"] == "loaded"],
            "models": models,
            **counters,
        }

    def close(self) -> None:
        """Stop every worker; waiting jobs fail, the running batch is given a few seconds to finish."""
        with self._lock:
            self._closed = True
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._retire(slot)
        self._free_memory()

    # -- queueing ----------------------------------------------------------------------------------

    def _submit(self, job: ImageJob) -> Future[list[GeneratedImage]]:
        _validate(job)
        base_id = job.base.id
        with self._lock:
            if self._closed:
                raise Overloaded("the image engine is shutting down", retry_after=5.0)
            for _ in range(2):  # a slot closed by eviction or a failed load is replaced once
                slot = self._slots.get(base_id) or self._new_slot(job.base)
                assert slot.worker is not None
                try:
                    future = slot.worker.submit(job)
                except WorkerClosed:
                    if self._slots.get(base_id) is slot:
                        del self._slots[base_id]
                    continue
                except QueueFull:
                    raise Overloaded(
                        f"too many requests waiting for {base_id!r} ({self.max_queue}); retry shortly",
                        retry_after=self._retry_after(slot),
                    ) from None
                self._slots.move_to_end(base_id)
                return future
        raise Overloaded(f"model {base_id!r} is being reloaded; retry shortly", retry_after=1.0)

    def _retry_after(self, slot: _Slot) -> float:
        assert slot.worker is not None
        batches_ahead = slot.worker.queue_depth / self.max_batch_size + 1
        return float(max(1, math.ceil(slot.worker.last_batch_s * batches_ahead)))

    def _new_slot(self, spec: BaseModelSpec) -> _Slot:
        """Called with the lock held: the worker's first act, on its own thread, is loading the base."""
        slot = _Slot(spec)
        slot.worker = BatchWorker(
            name=spec.id,
            run_batch=partial(self._run_batch, slot),
            batch_key=_batch_key,
            job_size=lambda job: len(job.seeds),
            max_queue=self.max_queue,
            max_batch_size=self.max_batch_size,
            batch_timeout_s=self.batch_timeout_s,
            setup=partial(self._load, slot),
            on_setup_error=partial(self._forget, slot),
        )
        self._slots[spec.id] = slot
        slot.worker.start()
        return slot

    # -- worker-thread side ------------------------------------------------------------------------

    def _device(self) -> str:
        if self._resolved_device is None:
            device = self.device
            if device == "auto":
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._resolved_device = device
        return self._resolved_device

    def _load(self, slot: _Slot) -> None:
        from genfoundry.inference.image_runner import ImageRunner

        device = self._device()
        self._make_room(slot, estimate_weight_files_bytes(slot.spec))
        started = time.perf_counter()
        pipe = load_pipeline(slot.spec, device=device, dtype=self.dtype)
        runner = ImageRunner(slot.spec, pipe, device=device)
        nbytes = estimate_pipeline_bytes(pipe)
        assert slot.worker is not None
        if slot.worker.closed:  # the engine closed while this base was loading
            runner.release()
            return
        with self._lock:
            slot.runner, slot.nbytes = runner, nbytes
            self._counters["loads"] += 1
        logger.info("loaded %s (%d MiB) in %.2fs", slot.spec.id, nbytes >> 20, time.perf_counter() - started)
        self._make_room(slot, nbytes)

    def _forget(self, slot: _Slot, _exc: BaseException) -> None:
        with self._lock:
            if self._slots.get(slot.spec.id) is slot:
                del self._slots[slot.spec.id]

    def _make_room(self, slot: _Slot, need: int) -> None:
        """Evict least recently used idle bases until `need` more bytes fit; busy bases are never evicted."""
        evicted: list[_Slot] = []
        with self._lock:
            others = [other for other in self._slots.values() if other is not slot]
            total = sum(other.nbytes for other in others)
            for other in others:
                if total + need <= self.memory_budget_bytes:
                    break
                assert other.worker is not None
                if other.runner is not None and other.worker.close_if_idle():
                    del self._slots[other.spec.id]
                    total -= other.nbytes
                    evicted.append(other)
                    self._counters["evictions"] += 1
            over = total + need > self.memory_budget_bytes
        for other in evicted:
            logger.info("evicted %s to make room for %s", other.spec.id, slot.spec.id)
            self._retire(other)
        if evicted:
            self._free_memory()
        if over and need:
            logger.warning("%s goes over the memory budget: the other loaded bases are busy", slot.spec.id)

    def _retire(self, slot: _Slot) -> None:
        assert slot.worker is not None
        slot.worker.close(timeout=30.0)
        if slot.runner is not None:
            slot.runner.release()
            slot.runner = None

    def _free_memory(self) -> None:
        gc.collect()
        if (self._resolved_device or "").startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _unload_on(self, slot: _Slot, adapter_id: str) -> None:
        if slot.runner is not None:
            slot.runner.unload_adapter(adapter_id)

    def _run_batch(self, slot: _Slot, jobs: list[ImageJob]) -> list[list[GeneratedImage]]:
        runner = slot.runner
        if runner is None:
            raise RuntimeError(f"{slot.spec.id!r} is not loaded")
        try:
            per_job, elapsed = runner.run(jobs)
        except Exception:
            with self._lock:
                self._counters["failed_batches"] += 1
            raise
        with self._lock:
            self._counters["batches_served"] += 1
            self._counters["requests_served"] += len(jobs)
            self._counters["images_served"] += sum(len(job.seeds) for job in jobs)
        return [
            [GeneratedImage(image, seed, elapsed) for image, seed in zip(images, job.seeds, strict=True)]
            for job, images in zip(jobs, per_job, strict=True)
        ]
