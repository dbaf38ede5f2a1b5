"""Load a base model's text-to-image pipeline from a local folder, the HF cache, or (when reachable) the Hub.

Offline by design: with `HF_HUB_OFFLINE` set, or when the weights are already cached, nothing touches the
network; a model that is neither local nor fetchable is a `ModelUnavailable` naming it and the command that fetches
it, never a hang: a Hub that does not answer within seconds (`genfoundry.hub`) ends the load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from genfoundry.devices import DTYPES, model_torch_dtype
from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.hub import HUB_PROBE_TIMEOUT_S, fetch_command, hub_answers, hub_endpoint, hub_offline
from genfoundry.model_files import parse_single_file_source

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

logger = logging.getLogger(__name__)
T = TypeVar("T")

# diffusers and transformers build a model with torch.nn.Module patched process-wide (accelerate-style
# init_empty_weights: new parameters land on the meta device) while they load it. A module built on another
# thread in that window (a LoRA, another model) gets empty parameters: the router's encoder, loaded at server
# start beside the first image request, lost its LoRA that way. Every load that builds torch modules holds this
# lock; a Hub download inside `from_pretrained` holds it too.
MODULE_BUILD_LOCK = threading.RLock()

FAMILY_PIPELINES: dict[str, str] = {
    "sd15": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "flux": "FluxPipeline",
}
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class BaseModelSpec:
    """A base model as the engine sees it: `source` is a HF repo id or a local folder.

    `family` is one of "sd15", "sdxl", "flux"; `dtype` one of "auto", "float32", "float16", "bfloat16".
    """

    id: str
    family: str
    source: str
    dtype: str = "auto"
    scheduler: str | None = None  # a diffusers scheduler class name; None keeps the pipeline's own

    def __post_init__(self) -> None:
        if self.family not in FAMILY_PIPELINES:
            raise Invalid(f"model {self.id!r}: family must be one of {sorted(FAMILY_PIPELINES)}, got {self.family!r}")
        if self.dtype not in DTYPES:
            raise Invalid(f"model {self.id!r}: dtype must be one of {DTYPES}, got {self.dtype!r}")


def _local_folder(source: str) -> Path | None:
    """The folder `source` names, or None when it reads as a Hub repo id ("owner/name")."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    looks_like_path = path.is_absolute() or source.startswith((".", "~")) or "\\" in source or source.count("/") > 1
    if looks_like_path:
        raise ModelUnavailable(
            f"base model folder {source!r} does not exist; build or copy the model there, "
            "or point the catalog source at another folder or a Hugging Face repo id"
        )
    return None


def cached_snapshot(repo_id: str, marker: str) -> Path | None:
    """The HF cache snapshot folder holding `repo_id`'s `marker` file (model_index.json, config.json), if any;
    no network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, marker)
    except ValueError:  # not a valid repo id
        return None
    return Path(found).parent if isinstance(found, str) else None


def unavailable(what: str, source: str, reason: str, *, entry: str = "model") -> ModelUnavailable:
    """The error for a model (`what`: "base model 'x'", "captioner 'y'") neither local nor fetchable; `entry`
    names its kind of catalog entry."""
    return ModelUnavailable(
        f"{what} ({source}) is not available locally and cannot be fetched: {reason}. "
        f"Run `{fetch_command(source)}` (on a machine with network access, then copy the HF cache here), "
        f"or set the catalog source of this {entry} to a local folder."
    )


def check_fetchable(source: str, *, cached: bool, what: str, missing: str, entry: str = "model") -> None:
    """`unavailable(what, ...)` at once when `source` is not cached and cannot be fetched now (offline, or the Hub
    does not answer); call it before importing the libraries a load needs, which take seconds on their own."""
    if cached:
        return
    if hub_offline():
        raise unavailable(what, source, f"HF_HUB_OFFLINE is set and {missing} not in the HF cache", entry=entry)
    if not hub_answers():  # huggingface_hub would retry for minutes before giving up
        reason = (
            f"{missing} not in the HF cache and the Hugging Face Hub ({hub_endpoint()}) did not answer "
            f"within {HUB_PROBE_TIMEOUT_S:g} s"
        )
        raise unavailable(what, source, reason, entry=entry)


def from_pretrained_offline_first(
    load: Callable[..., T],
    source: str,
    *,
    cached: bool,
    what: str,
    missing: str,
    entry: str = "model",
    **kwargs: Any,
) -> T:
    """`load(source, **kwargs)` (a `from_pretrained`) from the HF cache when `cached` or HF_HUB_OFFLINE is set,
    else (or when the cache proves incomplete) from the Hub if it answers at once; failures become
    `unavailable(what, ...)`.
    `missing` says what the cache lacks ("the weights are", "the files are", "it is")."""
    offline = hub_offline()
    if offline or cached:
        try:
            with MODULE_BUILD_LOCK:
                return load(source, local_files_only=True, **kwargs)
        except OSError as exc:
            if offline:
                reason = f"HF_HUB_OFFLINE is set and {missing} not in the HF cache"
                raise unavailable(what, source, reason, entry=entry) from exc
            logger.info("cache for %s is incomplete, trying the Hub: %s", source, exc)
    check_fetchable(source, cached=False, what=what, missing=missing, entry=entry)
    try:
        with MODULE_BUILD_LOCK:
            return load(source, **kwargs)
    except OSError as exc:  # huggingface_hub's HTTP, offline and not-found errors are all OSErrors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise unavailable(what, source, reason, entry=entry) from exc


def _dtype_kwarg() -> str:
    """diffusers renamed `torch_dtype` to `dtype` (the old name warns); support both generations."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def load_pipeline(spec: BaseModelSpec, *, device: str, dtype: str) -> DiffusionPipeline:
    """Load `spec` as a text-to-image pipeline on `device`; `dtype` is the engine default for `auto` specs."""
    single = parse_single_file_source(spec.source)
    folder = _local_folder(spec.source) if single is None else None
    cached = single is None and folder is None and cached_snapshot(spec.source, "model_index.json") is not None
    if single is None and folder is None:  # before importing diffusers (seconds): what nobody can fetch fails now
        check_fetchable(spec.source, cached=cached, what=f"base model {spec.id!r}", missing="the weights are")
    import diffusers

    pipeline_cls = getattr(diffusers, FAMILY_PIPELINES[spec.family])
    kwargs: dict[str, Any] = {_dtype_kwarg(): model_torch_dtype(spec.dtype, dtype, device, spec.family)}
    if spec.family == "sd15":
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)

    if single is not None:
        from genfoundry.models.single_file import load_single_file_pipeline

        with MODULE_BUILD_LOCK:
            pipe = load_single_file_pipeline(spec.family, single, dtype=kwargs.pop(_dtype_kwarg()))
    elif folder is not None:
        try:
            with MODULE_BUILD_LOCK:
                pipe = pipeline_cls.from_pretrained(folder, **kwargs)
        except OSError as exc:
            raise ModelUnavailable(f"base model {spec.id!r}: cannot load folder {folder}: {exc}") from exc
    else:
        pipe = from_pretrained_offline_first(
            pipeline_cls.from_pretrained,
            spec.source,
            cached=cached,
            what=f"base model {spec.id!r}",
            missing="the weights are",
            **kwargs,
        )
    if spec.scheduler is not None:
        pipe.scheduler = _scheduler_class(spec).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    if device != "cpu":
        pipe.to(device)
    return pipe  # type: ignore[no-any-return]


def _scheduler_class(spec: BaseModelSpec) -> Any:
    import diffusers

    name = spec.scheduler or ""
    cls = getattr(diffusers, name, None) if name.endswith("Scheduler") else None
    if cls is None:
        raise Invalid(f"model {spec.id!r}: unknown scheduler {name!r}; use a diffusers scheduler class name")
    return cls


def estimate_pipeline_bytes(pipe: DiffusionPipeline) -> int:
    """Parameter + buffer bytes of the pipeline's torch modules; shared tensors count once."""
    import torch

    components: dict[str, Any] = cast(Any, pipe).components

    seen: set[int] = set()
    total = 0
    for component in components.values():
        if not isinstance(component, torch.nn.Module):
            continue
        for tensor in (*component.parameters(), *component.buffers()):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def estimate_weight_files_bytes(spec: BaseModelSpec) -> int:
    """Bytes of weight files on disk for `spec` (local folder or HF cache), 0 when unknown; no network.

    Used to make room before a load; the measured size replaces it once the pipeline is loaded.
    """
    single = parse_single_file_source(spec.source)
    if single is not None:
        return sum(p.stat().st_size for p in single.files() if p.is_file())
    try:
        folder = _local_folder(spec.source) or cached_snapshot(spec.source, "model_index.json")
    except ModelUnavailable:
        return 0
    if folder is None:
        return 0
    files = [p for p in folder.rglob("*") if p.suffix in _WEIGHT_SUFFIXES and p.is_file()]
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    return sum(p.stat().st_size for p in (safetensors or files))
