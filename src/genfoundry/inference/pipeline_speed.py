"""Serving-speed options (config.ImageSpeedSettings) applied to a text-to-image pipeline as it loads: channels-last,
fused q/k/v, torchao quantization, First-Block-Cache and torch.compile of the denoiser; plus the start-up checks of
what they need from the machine, and the measure of compile warm-up.

LoRA hotswap, the other half of serving a compiled denoiser with adapters, is inference/adapter_hotswap.py.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid

if TYPE_CHECKING:
    from genfoundry.config import ImageSpeedSettings

logger = logging.getLogger(__name__)

# torch.compile's backend. Tests compile with "eager" (seconds on a CPU, same graph capture and guards); with any
# backend but inductor, compile_mode is not passed (it is inductor's).
_compile_backend = "inductor"
_FP8_MIN_CAPABILITY = (8, 9)


def check_image_speed(speed: ImageSpeedSettings, device: Callable[[], str]) -> None:
    """`Invalid` naming the fix when the machine lacks what `speed` needs (torchao; a GPU able to run fp8). `device`
    resolves the engines' device, only when fp8 needs it (resolving imports torch)."""
    if speed.quantization == "none":
        return
    if importlib.util.find_spec("torchao") is None:
        raise Invalid(
            f"image_speed.quantization={speed.quantization!r} needs torchao, which is not installed: "
            "`pip install torchao` (or set GENFOUNDRY_IMAGE_SPEED__QUANTIZATION=none)"
        )
    if speed.quantization == "fp8":
        resolved = device()
        if not resolved.startswith("cuda"):
            raise Invalid(f"image_speed.quantization='fp8' needs a CUDA GPU; this server runs on {resolved!r}")
        import torch

        capability = torch.cuda.get_device_capability(resolved)
        if capability < _FP8_MIN_CAPABILITY:
            raise Invalid(
                f"image_speed.quantization='fp8' needs a GPU of compute capability 8.9 or more (Ada, Hopper); "
                f"{torch.cuda.get_device_name(resolved)} has {capability[0]}.{capability[1]}: use 'int8-weight-only'"
            )


def image_speed_warnings(speed: ImageSpeedSettings) -> list[str]:
    """What is allowed but probably not meant, to log at start-up."""
    warnings = []
    if speed.compile and speed.hotswap_max_rank == 0:
        warnings.append(
            "image_speed.compile is on without image_speed.hotswap_max_rank: each change of a base's adapters "
            "recompiles its denoiser (seconds to minutes); set hotswap_max_rank to the largest adapter rank served"
        )
    return warnings


@dataclass
class SpeedReport:
    """What `apply_image_speed` did to one base, and the compile warm-up its runner has measured since."""

    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    fused_qkv: bool = False
    compiled: bool = False
    compile_warmup_s: float = 0.0
    compile_warmup_batches: int = 0

    def as_stats(self) -> dict[str, Any]:
        return {
            "applied": list(self.applied),
            "skipped": list(self.skipped),
            "compile_warmup_s": round(self.compile_warmup_s, 3),
            "compile_warmup_batches": self.compile_warmup_batches,
        }

    @contextmanager
    def measure_batch(self, base_id: str) -> Iterator[None]:
        """Count the batch's wall time as compile warm-up when torch.compile compiled a graph during it (its first
        calls, a new image size, an adapter change without hotswap). The graph count is process-wide, so two compiled
        bases compiling at the same moment both count it."""
        if not self.compiled:
            yield
            return
        graphs = _compiled_graphs()
        started = time.perf_counter()
        yield
        if _compiled_graphs() != graphs:
            elapsed = time.perf_counter() - started
            self.compile_warmup_s += elapsed
            self.compile_warmup_batches += 1
            logger.info("compile warm-up: a batch on %s compiled its denoiser in %.1fs", base_id, elapsed)


def _compiled_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def denoiser_name(pipe: Any) -> str:
    return "transformer" if getattr(pipe, "transformer", None) is not None else "unet"


def apply_image_speed(pipe: Any, speed: ImageSpeedSettings, *, device: str) -> SpeedReport:
    """Apply `speed` to a loaded pipeline (on `device`) in the order that works: memory format, fusion, quantization,
    cache, then compile. Options a pipeline has no support for are skipped with a log line."""
    report = SpeedReport()
    name = denoiser_name(pipe)
    denoiser = getattr(pipe, name)
    if speed.channels_last:
        _channels_last(pipe, report)
    if speed.fuse_qkv:
        _fuse_qkv(pipe, denoiser, report)
    if speed.quantization != "none":
        _quantize(denoiser, speed, device, report)
    if speed.first_block_cache > 0:
        _first_block_cache(denoiser, speed.first_block_cache, report)
    if speed.compile:
        options: dict[str, Any] = {"fullgraph": speed.compile_fullgraph}
        if _compile_backend == "inductor":
            options["mode"] = speed.compile_mode
        else:
            options["backend"] = _compile_backend
        denoiser.compile(**options)  # in place: the pipeline keeps its module (LoRA loading, from_pipe)
        report.compiled = True
        report.applied.append(f"compile:{speed.compile_mode}")
    for skipped in report.skipped:
        logger.warning("image speed: %s", skipped)
    if report.applied:
        logger.info("image speed on %s: %s", type(pipe).__name__, ", ".join(report.applied))
    return report


def _channels_last(pipe: Any, report: SpeedReport) -> None:
    import torch

    for part in ("unet", "vae"):
        module = getattr(pipe, part, None)
        if module is not None:
            module.to(memory_format=torch.channels_last)
            report.applied.append(f"channels_last:{part}")


def _fuse_qkv(pipe: Any, denoiser: Any, report: SpeedReport) -> None:
    if hasattr(pipe, "fuse_qkv_projections"):  # SD 1.5 / SDXL: the UNet's and the VAE's attention
        pipe.fuse_qkv_projections()
    elif hasattr(denoiser, "fuse_qkv_projections"):  # FLUX: the transformer's
        denoiser.fuse_qkv_projections()
    else:
        report.skipped.append(f"fuse_qkv: {type(pipe).__name__} has no fused q/k/v projections")
        return
    report.fused_qkv = True
    report.applied.append("fuse_qkv")


def _quantize(denoiser: Any, speed: ImageSpeedSettings, device: str, report: SpeedReport) -> None:
    check_image_speed(speed, lambda: device)
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    config = Float8DynamicActivationFloat8WeightConfig() if speed.quantization == "fp8" else Int8WeightOnlyConfig()
    quantize_(denoiser, config)
    report.applied.append(f"quantization:{speed.quantization}")


def _first_block_cache(denoiser: Any, threshold: float, report: SpeedReport) -> None:
    if not hasattr(denoiser, "enable_cache"):
        report.skipped.append(f"first_block_cache: diffusers has no cache hooks for {type(denoiser).__name__}")
        return
    from diffusers.hooks.first_block_cache import FirstBlockCacheConfig

    denoiser.enable_cache(FirstBlockCacheConfig(threshold=threshold))
    report.applied.append(f"first_block_cache:{threshold:g}")
