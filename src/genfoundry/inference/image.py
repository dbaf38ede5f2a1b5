"""The image engine: text-to-image and image-to-image on catalog bases, with LoRA adapters per request.

Each base is loaded once (on its own worker thread, never on the event loop) and kept in an LRU under a
memory budget. Requests for a base wait in that base's bounded queue; its worker runs compatible requests
as one pipeline call (micro-batching) and switches adapters in place between calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genfoundry.config import ImageSpeedSettings
from genfoundry.errors import Invalid
from genfoundry.inference.loader import (
    BaseModelSpec,
    estimate_pipeline_bytes,
    estimate_weight_files_bytes,
    load_pipeline,
)
from genfoundry.inference.model_pool import ModelPool, QueuePlace, Slot
from genfoundry.inference.pipeline_speed import SpeedReport, apply_image_speed

if TYPE_CHECKING:
    from PIL.Image import Image

    from genfoundry.inference.image_runner import ImageRunner

__all__ = ["BaseModelSpec", "GeneratedImage", "ImageEngine", "ImageJob", "LoraSpec"]

_SEED_MIN, _SEED_MAX = -(2**63), 2**64 - 1


@dataclass(frozen=True)
class LoraSpec:
    """A diffusers-format LoRA file; `id` is its registry id (adapters are cached per id and path)."""

    id: str
    path: str
    weight: float = 1.0


@dataclass(frozen=True)
class ImageJob:
    """One request: `len(seeds)` images; `init_image` makes it image-to-image with `strength`, and `mask` (same
    size, white = repaint) inpainting. `on_partial(index, image)` is called on the worker thread with
    `partial_images` previews decoded at evenly spaced denoising steps (one image per job: never batched)."""

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
    mask: Image | None = None
    partial_images: int = 0
    on_partial: Callable[[int, Image], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class GeneratedImage:
    image: Image
    seed: int
    generation_time_s: float


def _batch_key(job: ImageJob) -> Hashable:
    """Jobs with equal keys can share one pipeline call (prompts and seeds may differ)."""
    img2img = job.init_image is not None
    return (
        img2img,
        job.mask is not None,
        id(job) if job.on_partial is not None else None,  # previews follow one job's denoising
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
    if job.mask is not None and (job.init_image is None or job.mask.size != job.init_image.size):
        raise Invalid("a mask needs an image of the same size", param="mask")
    if not 0 <= job.partial_images <= 3:
        raise Invalid(f"partial_images must be in [0, 3], got {job.partial_images}", param="partial_images")
    if job.on_partial is not None and len(job.seeds) != 1:
        raise Invalid("a streamed request makes one image", param="n")
    ids = [lora.id for lora in job.loras]
    if len(set(ids)) != len(ids):
        raise Invalid("each adapter may appear once per request", param="loras")


class ImageEngine(ModelPool[BaseModelSpec, ImageJob, list[GeneratedImage], "ImageRunner"]):
    """Serves `ImageJob`s: one worker thread and bounded queue per loaded base, LRU under a byte budget, and at
    most `max_resident_adapters` LoRA adapters loaded per base (least recently used unloaded first). `speed` (compile,
    LoRA hotswap, quantization...) is applied to each base as it loads."""

    kind = "image"

    def __init__(
        self,
        *,
        device: str,
        dtype: str,
        memory_budget_bytes: int,
        max_queue: int,
        max_batch_size: int,
        batch_timeout_s: float,
        threads: int | None = None,
        max_resident_adapters: int = 8,
        speed: ImageSpeedSettings | None = None,
    ) -> None:
        if max_resident_adapters < 1:
            raise ValueError(f"max_resident_adapters must be >= 1, got {max_resident_adapters}")
        self.max_resident_adapters = max_resident_adapters
        self.speed = speed or ImageSpeedSettings()
        self._speed_reports: dict[str, SpeedReport] = {}  # base id -> what its last load applied
        super().__init__(
            device=device,
            dtype=dtype,
            memory_budget_bytes=memory_budget_bytes,
            max_queue=max_queue,
            max_batch_size=max_batch_size,
            batch_timeout_s=batch_timeout_s,
            counters=("requests_served", "batches_served", "images_served", "failed_batches", "adapters_evicted"),
            threads=threads,
        )

    async def generate(self, job: ImageJob, place: QueuePlace | None = None) -> list[GeneratedImage]:
        """Generate `len(job.seeds)` images; raises `Overloaded` at once when the base's queue is full, unless
        `place` (from `hold_place`) holds a place in it."""
        return await self.submit(job, place)

    def submit(self, job: ImageJob, place: QueuePlace | None = None) -> asyncio.Future[list[GeneratedImage]]:
        """`generate`, queued now (before the caller's place is given back) and awaited later; needs a running
        event loop."""
        return asyncio.wrap_future(self._submit(job, place))

    def generate_sync(self, job: ImageJob) -> list[GeneratedImage]:
        """`generate` for in-process CLI use: same queue and worker, blocking the calling thread."""
        return self._submit(job).result()

    # -- the pool's hooks --------------------------------------------------------------------------

    def _validate(self, job: ImageJob) -> None:
        _validate(job)
        if len(job.loras) > self.max_resident_adapters:
            raise Invalid(
                f"a request may use at most {self.max_resident_adapters} adapters together on this server "
                f"(max_resident_adapters), got {len(job.loras)}",
                param="loras",
            )
        if job.loras and self.speed.fuse_qkv:
            raise Invalid(
                "this server fuses q/k/v projections (image_speed.fuse_qkv), which adapters' q/k/v layers cannot "
                "apply to: it serves bases without adapters",
                param="loras",
            )
        if len(job.loras) > 1 and self.speed.hotswap_max_rank > 0:
            raise Invalid(
                f"this server swaps one adapter at a time into each base (image_speed.hotswap_max_rank), "
                f"got {len(job.loras)}",
                param="loras",
            )

    def _job_base(self, job: ImageJob) -> BaseModelSpec:
        return job.base

    def _batch_key(self, job: ImageJob) -> Hashable:
        return _batch_key(job)

    def _job_size(self, job: ImageJob) -> int:
        return len(job.seeds)

    def _estimate_bytes(self, spec: BaseModelSpec) -> int:
        return estimate_weight_files_bytes(spec)

    def _load_runner(self, spec: BaseModelSpec, device: str) -> tuple[ImageRunner, int]:
        from genfoundry.inference.image_runner import ImageRunner

        pipe = load_pipeline(spec, device=device, dtype=self.dtype)
        report = apply_image_speed(pipe, self.speed, device=device)
        runner = ImageRunner(
            spec,
            pipe,
            device=device,
            max_adapters=self.max_resident_adapters,
            on_evict=self._count_adapter_eviction,
            speed=report,
            hotswap_max_rank=self.speed.hotswap_max_rank,
        )
        with self._lock:
            self._speed_reports[spec.id] = report
        return runner, estimate_pipeline_bytes(pipe)

    def _count_adapter_eviction(self) -> None:
        with self._lock:
            self._counters["adapters_evicted"] += 1

    def _slot_stats(self, spec: BaseModelSpec) -> dict[str, Any]:
        with self._lock:
            report = self._speed_reports.get(spec.id)
        return {"family": spec.family, **({"speed": report.as_stats()} if report is not None else {})}

    def _run_batch(
        self, slot: Slot[BaseModelSpec, ImageJob, list[GeneratedImage], ImageRunner], jobs: list[ImageJob]
    ) -> list[list[GeneratedImage]]:
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
