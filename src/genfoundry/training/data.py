"""Training data: image + caption pairs from a dataset folder, aspect-ratio buckets and a seeded batch order."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genfoundry.errors import Invalid, Unprocessable

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Width:height ratios offered as buckets (the usual ladder of kohya / SimpleTuner / diffusers).
_ASPECT_RATIOS = ((1, 1), (4, 5), (5, 4), (3, 4), (4, 3), (2, 3), (3, 2), (9, 16), (16, 9), (1, 2), (2, 1))
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height

Bucket = tuple[int, int]  # (width, height) in pixels


@dataclass(frozen=True)
class DatasetItem:
    """One training example: an image file and the caption it trains with."""

    image_path: Path
    caption: str
    size: tuple[int, int]  # (width, height) after EXIF rotation


@dataclass(frozen=True)
class PreparedImage:
    """An image resized and center-cropped to its bucket, as a (1, 3, H, W) tensor in [-1, 1]."""

    pixels: torch.Tensor
    original_size: tuple[int, int]  # (height, width), the order SDXL's micro-conditioning uses
    crop_top_left: tuple[int, int]  # (top, left) in the resized image
    bucket: Bucket


def with_trigger_word(caption: str, trigger_word: str | None) -> str:
    """Prepend "<trigger>, " to a caption lacking the trigger as a whole word; an empty caption is the trigger."""
    text = " ".join(caption.split())
    trigger = (trigger_word or "").strip()
    if not trigger:
        return text
    if re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", text, flags=re.IGNORECASE):
        return text
    return f"{trigger}, {text}" if text else trigger


def load_dataset_items(
    dataset_dir: Path, trigger_word: str | None, *, caption_override: str | None = None
) -> list[DatasetItem]:
    """The folder's images (sorted by name) with their same-name .txt captions, kohya style.

    `caption_override` (DreamBooth's instance prompt) replaces every caption.
    """
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise Invalid(f"dataset folder {folder} does not exist", param="dataset")
    items = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        if caption_override is not None:
            caption = caption_override
        else:
            caption_file = path.with_suffix(".txt")
            text = caption_file.read_text(encoding="utf-8", errors="replace") if caption_file.is_file() else ""
            caption = with_trigger_word(text, trigger_word)
        if not caption:
            raise Invalid(f"image {path.name} has no caption and the dataset no trigger word", param="trigger_word")
        items.append(DatasetItem(image_path=path, caption=caption, size=_image_size(path)))
    if not items:
        raise Invalid(f"dataset folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})", param="dataset")
    return items


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) as the image displays, read from the header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION) in _ROTATED_ORIENTATIONS:
                width, height = height, width
    except (OSError, UnidentifiedImageError) as exc:
        raise Unprocessable(f"image {path.name} cannot be read: {exc}") from exc
    return width, height


def bucket_sizes(resolution: int) -> list[Bucket]:
    """Buckets of about resolution² pixels over the usual aspect ratios; sides multiple of 64 (16 below 512 px)."""
    step = 64 if resolution >= 512 else 16
    area = resolution * resolution
    buckets: list[Bucket] = []
    for ratio_w, ratio_h in _ASPECT_RATIOS:
        height = math.sqrt(area * ratio_h / ratio_w)
        width = height * ratio_w / ratio_h
        bucket = (max(step, round(width / step) * step), max(step, round(height / step) * step))
        if bucket not in buckets:
            buckets.append(bucket)
    return buckets


def nearest_bucket(size: tuple[int, int], buckets: list[Bucket]) -> Bucket:
    """The bucket whose aspect ratio is closest to the image's (in log space, so 1:2 and 2:1 are symmetric)."""
    width, height = size
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), buckets.index(b)))


def assign_buckets(items: list[DatasetItem], resolution: int, *, bucketing: bool = True) -> dict[Bucket, list[int]]:
    """Item indices grouped by bucket; only buckets that hold an image appear. Without bucketing there is one
    square bucket, so every image is center-cropped to resolution²."""
    buckets = bucket_sizes(resolution) if bucketing else [(resolution, resolution)]
    groups: dict[Bucket, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(nearest_bucket(item.size, buckets), []).append(index)
    return dict(sorted(groups.items()))


def load_bucketed_image(path: Path, bucket: Bucket) -> PreparedImage:
    """Resize to cover the bucket keeping the aspect ratio, center-crop, normalize with VaeImageProcessor."""
    from diffusers.image_processor import VaeImageProcessor
    from PIL import Image, ImageOps

    width, height = bucket
    with Image.open(path) as raw:
        image = ImageOps.exif_transpose(raw).convert("RGB")
    scale = max(width / image.width, height / image.height)
    resized = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    left, top = (resized[0] - width) // 2, (resized[1] - height) // 2
    cropped = image.resize(resized, Image.Resampling.LANCZOS).crop((left, top, left + width, top + height))
    # The crop already has the bucket's size, so the processor only converts and normalizes to [-1, 1].
    processor = VaeImageProcessor(vae_scale_factor=8, do_resize=False)
    pixels = processor.preprocess(cropped, height=height, width=width)
    return PreparedImage(
        pixels=pixels, original_size=(image.height, image.width), crop_top_left=(top, left), bucket=bucket
    )


class BatchSchedule:
    """Which items form micro-batch n: a pure function of (seed, n), so a resumed run sees the same batches.

    Each epoch shuffles every bucket, cuts it into batches (the last one may be short) and shuffles the
    batches; a batch never mixes buckets, so its images stack into one tensor.
    """

    def __init__(self, groups: dict[Bucket, list[int]], batch_size: int, seed: int) -> None:
        self._groups = {bucket: list(indices) for bucket, indices in groups.items()}
        self._batch_size = batch_size
        self._seed = seed
        self._epoch: tuple[int, list[list[int]]] | None = None
        self.batches_per_epoch = sum(math.ceil(len(v) / batch_size) for v in self._groups.values())

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The batches of one epoch, in training order."""
        rng = random.Random(self._seed * 1_000_003 + epoch)
        batches: list[list[int]] = []
        for indices in self._groups.values():
            order = list(indices)
            rng.shuffle(order)
            batches += [order[i : i + self._batch_size] for i in range(0, len(order), self._batch_size)]
        rng.shuffle(batches)
        return batches

    def batch(self, micro_step: int) -> list[int]:
        """Item indices of micro-batch `micro_step` (counted from 0 over the whole run)."""
        epoch, position = divmod(micro_step, self.batches_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, self.epoch_batches(epoch))
        return self._epoch[1][position]
