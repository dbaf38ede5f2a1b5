"""One loaded base pipeline, its image-to-image and inpainting twins and its LoRA adapters.

At most `max_adapters` adapters stay loaded into a base: once one more has loaded, the least recently used one
that the current batch does not need is unloaded (the engine refuses a request naming more than fit).

Every method runs on the base's worker thread (see batching.py), so the pipeline, its scheduler and its
adapter state are never touched by two threads at once and need no lock of their own.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from genfoundry.errors import Invalid
from genfoundry.inference.adapter_hotswap import HotswapSlot
from genfoundry.inference.export_guard import EXPORT_GUARD
from genfoundry.inference.image_previews import PreviewCallback
from genfoundry.inference.loader import MODULE_BUILD_LOCK
from genfoundry.inference.pipeline_speed import SpeedReport

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from PIL.Image import Image

    from genfoundry.inference.image import ImageJob, LoraSpec
    from genfoundry.inference.loader import BaseModelSpec

logger = logging.getLogger(__name__)

_MAX_T5_TOKENS = 512
_quiet_lock = threading.Lock()
_quieted = False


def adapter_name(adapter_id: str) -> str:
    """A PEFT-safe adapter name (module-dict keys may not hold dots) that stays unique per id."""
    slug = re.sub(r"[^0-9A-Za-z_]", "_", adapter_id)[:48]
    digest = hashlib.sha1(adapter_id.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"lora_{slug}_{digest}"


def _quiet_multi_adapter_warning() -> None:
    # PEFT warns on every second adapter injected into a model; several adapters per base is our design.
    # Installed once, process-wide, because warnings.catch_warnings is not thread-safe.
    global _quieted
    with _quiet_lock:
        if not _quieted:
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute", category=UserWarning)
            _quieted = True


def _keep_unmasked(image: Image, job: ImageJob) -> Image:
    """The input's own pixels outside the mask: the VAE's round trip would otherwise blur what was not edited."""
    from PIL import Image as PILImage

    assert job.init_image is not None and job.mask is not None
    original = job.init_image.convert("RGB")
    if image.size != original.size:
        image = image.resize(original.size, PILImage.Resampling.LANCZOS)
    return PILImage.composite(image.convert("RGB"), original, job.mask)


class ImageRunner:
    """Runs batches of compatible image jobs on one base; switches adapters without reloading the base and keeps
    at most `max_adapters` loaded; `on_evict` is called once per adapter unloaded to make room. With
    `hotswap_max_rank` > 0 adapters take turns in one slot instead (adapter_hotswap.py), `max_adapters` of them
    cached in memory; `speed` is what pipeline_speed applied to the pipeline, and gathers its compile warm-up."""

    def __init__(
        self,
        spec: BaseModelSpec,
        pipe: DiffusionPipeline,
        *,
        device: str,
        max_adapters: int,
        on_evict: Callable[[], None] = lambda: None,
        speed: SpeedReport | None = None,
        hotswap_max_rank: int = 0,
    ) -> None:
        if max_adapters < 1:
            raise ValueError(f"max_adapters must be >= 1, got {max_adapters}")
        self.spec = spec
        self.pipe: Any = pipe  # diffusers' mixins (LoRA loading, components) are invisible to mypy
        self.device = device
        self.max_adapters = max_adapters
        self._on_evict = on_evict
        self._img2img: Any = None
        self._inpaint: Any = None
        # adapter id -> (adapter name, path), least recently used first
        self._adapters: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._active: tuple[tuple[str, float], ...] | None = None  # None: unknown, set_adapters next time
        self._lora_enabled = True
        self.adapter_ids: tuple[str, ...] = ()  # snapshot for stats(), read from other threads
        self.speed = speed or SpeedReport()
        # Each call gets a copy of the scheduler as loaded: no step state can leak from an earlier or interrupted
        # call. A deep copy costs ~0.08 ms on the CPU here; rebuilding one with `from_config` cost ~0.45 ms.
        self._pristine_scheduler = copy.deepcopy(cast(Any, pipe).scheduler)
        self._hotswap = (
            HotswapSlot(
                pipe,
                base_id=spec.id,
                family=spec.family,
                max_rank=hotswap_max_rank,
                max_cached=max_adapters,
                on_evict=on_evict,
            )
            if hotswap_max_rank > 0
            else None
        )

    # -- adapters ----------------------------------------------------------------------------------

    def _load_adapter(self, lora: LoraSpec, keep: set[str]) -> None:
        """Make `lora` resident and most recently used; adapters outside `keep` may be evicted for room."""
        known = self._adapters.get(lora.id)
        if known is not None and known[1] == lora.path:
            self._adapters.move_to_end(lora.id)
            self.adapter_ids = tuple(self._adapters)
            return
        if known is not None:  # same id, new file: a new version of the adapter
            self.unload_adapter(lora.id)
        _quiet_multi_adapter_warning()
        name = adapter_name(lora.id)
        started = time.perf_counter()
        try:
            with MODULE_BUILD_LOCK:
                self.pipe.load_lora_weights(lora.path, adapter_name=name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise Invalid(f"cannot load adapter {lora.id!r} into {self.spec.id!r}: {exc}", param="loras") from exc
        logger.info("loaded adapter %s into %s in %.3fs", lora.id, self.spec.id, time.perf_counter() - started)
        self._adapters[lora.id] = (name, lora.path)
        self._active = None  # loading makes the new adapter the only active one
        self._evict_over_bound(keep)  # after the load, so an adapter that fails to load evicts nothing
        self.adapter_ids = tuple(self._adapters)

    def _evict_over_bound(self, keep: set[str]) -> None:
        """Unload least recently used adapters outside `keep` while more than `max_adapters` are loaded."""
        excess = len(self._adapters) - self.max_adapters
        for old_id in [adapter_id for adapter_id in self._adapters if adapter_id not in keep][: max(0, excess)]:
            self.unload_adapter(old_id)
            self._on_evict()
            logger.info(
                "evicted adapter %s from %s (least recently used; at most %d resident)",
                old_id,
                self.spec.id,
                self.max_adapters,
            )

    def unload_adapter(self, adapter_id: str) -> bool:
        """Delete the adapter's layers from the base; False when it was not loaded here."""
        if self._hotswap is not None:
            forgotten = self._hotswap.forget(adapter_id)
            self.adapter_ids = self._hotswap.adapter_ids
            return forgotten
        known = self._adapters.pop(adapter_id, None)
        if known is None:
            return False
        self.pipe.delete_adapters([known[0]])
        self.adapter_ids = tuple(self._adapters)
        self._active = None
        return True

    def _switch_adapters(self, loras: Sequence[LoraSpec]) -> None:
        if self._hotswap is not None:
            try:
                self._hotswap.switch(loras)
            finally:
                self.adapter_ids = self._hotswap.adapter_ids
            return
        if not loras:
            if self._adapters and self._lora_enabled:
                self.pipe.disable_lora()
                self._lora_enabled = False
            return
        keep = {lora.id for lora in loras}
        for lora in loras:
            self._load_adapter(lora, keep)
        wanted = tuple((self._adapters[lora.id][0], float(lora.weight)) for lora in loras)
        if not self._lora_enabled:
            self.pipe.enable_lora()
            self._lora_enabled = True
        if wanted != self._active:
            self.pipe.set_adapters([name for name, _ in wanted], adapter_weights=[w for _, w in wanted])
            self._active = wanted

    # -- generation --------------------------------------------------------------------------------

    def _img2img_pipe(self) -> Any:
        if self._img2img is None:
            from diffusers import AutoPipelineForImage2Image

            # Shares every component (and so every loaded adapter) with the text-to-image pipeline.
            self._img2img = AutoPipelineForImage2Image.from_pipe(self.pipe)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _inpaint_pipe(self) -> Any:
        if self._inpaint is None:
            from diffusers import AutoPipelineForInpainting

            # The same loaded weights and adapters again, with the inpainting loop: no second load.
            self._inpaint = AutoPipelineForInpainting.from_pipe(self.pipe)
            self._inpaint.set_progress_bar_config(disable=True)
        return self._inpaint

    def _pipe_for(self, job: ImageJob) -> Any:
        if job.mask is not None:
            return self._inpaint_pipe()
        return self._img2img_pipe() if job.init_image is not None else self.pipe

    def _call_kwargs(self, jobs: Sequence[ImageJob]) -> dict[str, Any]:
        import torch
        from PIL import Image as PILImage

        first = jobs[0]
        family = self.spec.family
        kwargs: dict[str, Any] = {
            "prompt": [job.prompt for job in jobs for _ in job.seeds],
            "num_inference_steps": first.steps,
            "guidance_scale": first.guidance_scale,
            "generator": [torch.Generator(device=self.device).manual_seed(s) for job in jobs for s in job.seeds],
            "output_type": "pil",
        }
        if family == "flux":
            tokenizer = getattr(self.pipe, "tokenizer_2", None)
            max_len = int(getattr(tokenizer, "model_max_length", _MAX_T5_TOKENS))
            kwargs["max_sequence_length"] = min(max_len, _MAX_T5_TOKENS)
        elif first.negative_prompt is not None:  # the batch key keeps None and text apart (SDXL zeroes None)
            kwargs["negative_prompt"] = [job.negative_prompt or "" for job in jobs for _ in job.seeds]
        if first.init_image is None or first.mask is not None or family == "flux":
            kwargs.update(width=first.width, height=first.height)
        if first.init_image is not None:
            size = (first.width, first.height)
            images = []
            for job in jobs:
                assert job.init_image is not None
                image = job.init_image.convert("RGB")
                if image.size != size:
                    image = image.resize(size, PILImage.Resampling.LANCZOS)
                images.extend([image] * len(job.seeds))
            kwargs.update(image=images, strength=first.strength)
        if first.mask is not None:
            kwargs["mask_image"] = [job.mask for job in jobs if job.mask is not None for _ in job.seeds]
        if first.on_partial is not None and first.partial_images > 0:
            kwargs["callback_on_step_end"] = PreviewCallback(
                family=family, width=first.width, height=first.height, count=first.partial_images, emit=first.on_partial
            )
            kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
        return kwargs

    def run(self, jobs: Sequence[ImageJob]) -> tuple[list[list[Image]], float]:
        """One pipeline call for all `jobs` (same batch key); images per job, and the call's wall time."""
        with EXPORT_GUARD.running(), self.speed.measure_batch(self.spec.id):
            return self._run(jobs)

    def _run(self, jobs: Sequence[ImageJob]) -> tuple[list[list[Image]], float]:
        import torch

        self._switch_adapters(jobs[0].loras)
        pipe = self._pipe_for(jobs[0])
        pipe.scheduler = copy.deepcopy(self._pristine_scheduler)
        kwargs = self._call_kwargs(jobs)
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                images = list(pipe(**kwargs).images)
        except ValueError as exc:  # diffusers' check_inputs: a bad size, strength, step count...
            raise Invalid(str(exc)) from exc
        elapsed = time.perf_counter() - started
        per_job: list[list[Image]] = []
        offset = 0
        for job in jobs:
            made = images[offset : offset + len(job.seeds)]
            per_job.append([_keep_unmasked(image, job) for image in made] if job.mask is not None else made)
            offset += len(job.seeds)
        return per_job, elapsed

    def release(self) -> None:
        """Drop the pipelines so their memory can be freed (eviction)."""
        self._img2img = None
        self._inpaint = None
        self.pipe = None
        self._adapters.clear()
        self._hotswap = None
