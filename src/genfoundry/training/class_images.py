"""DreamBooth class images: made by the base model, cached on disk under a key of what decides them, reused.

A cache folder holds `class_<index>.png`; image i depends only on (key, i) — its seed is a hash of the run
seed and i — so a later run that wants more images generates only the missing indices. Every file is
written to a temp name, fsynced and renamed, so a killed run never leaves a half image under a real name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from genfoundry.training.config import DreamBoothTrainingConfig

SPEC_FILE = "spec.json"
_CACHE_VERSION = 1  # bump when the way images are generated changes, so old caches are not reused
_GENERATE_BATCH = 4  # diffusers' train_dreambooth.py --sample_batch_size
_STALE_TEMP_S = 3600.0  # a temp file this old belongs to a run that died; younger ones may be in flight


@dataclass(frozen=True)
class ClassImageSpec:
    """Everything that decides the class images; its hash names the cache folder."""

    base_source: str
    prompt: str
    resolution: int
    seed: int
    steps: int
    guidance_scale: float

    @classmethod
    def from_config(cls, config: DreamBoothTrainingConfig) -> ClassImageSpec:
        if config.class_prompt is None:
            raise ValueError("class images need a class prompt")
        local = Path(config.base_source).expanduser()
        return cls(
            base_source=str(local.resolve()) if local.is_dir() else config.base_source,
            prompt=config.class_prompt,
            resolution=config.resolution,
            seed=config.seed,
            steps=config.class_image_steps,
            guidance_scale=config.class_guidance_scale,
        )

    def key(self) -> str:
        fields = {**dataclasses.asdict(self), "version": _CACHE_VERSION}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ClassImages:
    """The class images of one run (the first `count` of the cache folder) and how many were made now."""

    folder: Path
    paths: list[Path]
    generated: int
    reused: int


def class_image_path(folder: Path, index: int) -> Path:
    return folder / f"class_{index:05d}.png"


def class_image_seed(seed: int, index: int) -> int:
    """The generator seed of class image `index`: a hash, so neighbouring seeds give unrelated noise."""
    digest = hashlib.blake2b(f"class:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def ensure_class_images(
    pipe: Any,
    spec: ClassImageSpec,
    count: int,
    cache_root: Path,
    *,
    device: torch.device,
    log: Callable[[str], None],
) -> ClassImages:
    """The first `count` class images of `spec` under `cache_root/<key>`, generating the missing ones with `pipe`."""
    import torch

    folder = Path(cache_root) / spec.key()
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_files(folder)
    spec_file = folder / SPEC_FILE
    if not spec_file.is_file():
        _write_atomically(spec_file, lambda tmp: tmp.write_text(json.dumps(dataclasses.asdict(spec), indent=2)))
    paths = [class_image_path(folder, index) for index in range(count)]
    missing = [index for index, path in enumerate(paths) if not path.is_file()]
    if missing:
        log(f"generating {len(missing)} class images for {spec.prompt!r} ({count - len(missing)} cached)")
        pipe.to(device)
        began = time.perf_counter()
        for start in range(0, len(missing), _GENERATE_BATCH):
            chunk = missing[start : start + _GENERATE_BATCH]
            generators = [torch.Generator("cpu").manual_seed(class_image_seed(spec.seed, i)) for i in chunk]
            images = pipe(
                prompt=[spec.prompt] * len(chunk),
                num_inference_steps=spec.steps,
                guidance_scale=spec.guidance_scale,
                height=spec.resolution,
                width=spec.resolution,
                generator=generators,
                output_type="pil",
            ).images
            for index, image in zip(chunk, images, strict=True):
                _save_png(image, paths[index])
        log(f"generated {len(missing)} class images in {time.perf_counter() - began:.1f}s into {folder}")
    else:
        log(f"reusing {count} cached class images for {spec.prompt!r} from {folder}")
    return ClassImages(folder=folder, paths=paths, generated=len(missing), reused=count - len(missing))


class ClassSchedule:
    """Which class images pair with micro-batch n: an endless seeded shuffle, a pure function of (seed, n),
    so a resumed run pairs the same images."""

    def __init__(self, count: int, batch_size: int, seed: int) -> None:
        self._count = count
        self._batch_size = batch_size
        self._seed = seed
        self._orders: dict[int, list[int]] = {}

    def batch(self, micro_step: int, size: int) -> list[int]:
        """`size` class image indices for micro-batch `micro_step` (size <= the batch size)."""
        start = micro_step * self._batch_size
        picked = []
        for position in range(start, start + size):
            epoch, offset = divmod(position, self._count)
            picked.append(self._order(epoch)[offset])
        return picked

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(self._count))
            random.Random(f"class:{self._seed}:{epoch}").shuffle(order)
            self._orders = {epoch: order}  # batches move forward through epochs: keep only the current one
        return self._orders[epoch]


def _save_png(image: Image.Image, path: Path) -> None:
    _write_atomically(path, lambda tmp: image.save(tmp, format="PNG"))


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)  # another run writing the same image at once is harmless: both are complete
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_temp_files(folder: Path) -> None:
    now = time.time()
    for path in folder.glob(".tmp-*"):
        try:
            if now - path.stat().st_mtime > _STALE_TEMP_S:
                path.unlink()
        except FileNotFoundError:
            pass
