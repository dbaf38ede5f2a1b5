"""kohya sd-scripts dataset config (TOML) for an image dataset folder, so it trains there unchanged.

Left unset, `resolution` comes from the images: kohya buckets every image to about `resolution`² pixels, so a
resolution above an image's own size upscales it (blurry training data). The default is the largest step of
`RESOLUTION_STEP` px, at most `MAX_RESOLUTION`, that at least half of the images reach in √(width × height): most
images are trained at their own detail or scaled down, never up. The exported file says so in a comment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from genfoundry.errors import Invalid

RESOLUTION_STEP = 64  # kohya's bucket_reso_steps
MIN_RESOLUTION = 64
MAX_RESOLUTION = 1024  # SDXL's and FLUX's native size; larger images are scaled down to it


@dataclass(frozen=True)
class KohyaOptions:
    resolution: int | None = None  # None: from the images (`resolution_from_images`)
    batch_size: int = 1
    num_repeats: int = 10
    enable_bucket: bool = True
    class_tokens: str | None = None
    keep_tokens: int = 0
    shuffle_caption: bool = False

    def check(self) -> None:
        if self.resolution is not None and (not 64 <= self.resolution <= 4096 or self.resolution % 8):
            raise Invalid("resolution must be a multiple of 8 between 64 and 4096", param="resolution")
        if not 1 <= self.batch_size <= 256:
            raise Invalid("batch_size must be between 1 and 256", param="batch_size")
        if not 1 <= self.num_repeats <= 10_000:
            raise Invalid("num_repeats must be between 1 and 10000", param="num_repeats")
        if not 0 <= self.keep_tokens <= 255:
            raise Invalid("keep_tokens must be between 0 and 255", param="keep_tokens")


def resolution_from_images(sizes: Sequence[tuple[int, int]]) -> tuple[int, str]:
    """The resolution that upscales at most half of the images of these (width, height) sizes, and why, in words."""
    if not sizes:
        return MAX_RESOLUTION, f"{MAX_RESOLUTION} (no images to measure)"
    sides = sorted((math.sqrt(width * height) for width, height in sizes), reverse=True)
    reached = sides[math.ceil(len(sides) / 2) - 1]  # at least half of the images are this large or larger
    stepped = int(reached) // RESOLUTION_STEP * RESOLUTION_STEP
    resolution = max(MIN_RESOLUTION, min(MAX_RESOLUTION, stepped))
    if stepped > MAX_RESOLUTION:
        why = f"at most {MAX_RESOLUTION}; most images are larger and are scaled down"
    elif stepped < MIN_RESOLUTION:
        why = f"the smallest kohya takes; most images are smaller (half reach {reached:.0f} px) and are upscaled"
    else:
        why = f"the largest {RESOLUTION_STEP}-px step that at least half of the images reach, so most are not upscaled"
    return resolution, f"{resolution} from the {len(sizes)} images (√(width × height)): {why}"


def kohya_dataset_config(image_dir: Path, options: KohyaOptions, *, image_sizes: Sequence[tuple[int, int]] = ()) -> str:
    """The TOML sd-scripts reads with --dataset_config; captions are the same-name .txt files. Without a
    resolution in `options`, it comes from `image_sizes` and a comment at the top says how."""
    options.check()
    header = ""
    resolution = options.resolution
    if resolution is None:
        resolution, why = resolution_from_images(image_sizes)
        header = f"# resolution {why}.\n# Set another with ?resolution= (API) or --resolution (CLI).\n"
    subset: dict[str, object] = {"image_dir": str(image_dir), "num_repeats": options.num_repeats}
    if options.class_tokens:
        subset["class_tokens"] = options.class_tokens
    if options.keep_tokens:
        subset["keep_tokens"] = options.keep_tokens
    config = {
        "general": {
            "caption_extension": ".txt",
            "enable_bucket": options.enable_bucket,
            "shuffle_caption": options.shuffle_caption,
        },
        "datasets": [
            {"resolution": resolution, "batch_size": options.batch_size, "subsets": [subset]},
        ],
    }
    return header + tomli_w.dumps(config)
