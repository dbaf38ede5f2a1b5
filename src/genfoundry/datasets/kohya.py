"""kohya sd-scripts dataset config (TOML) for an image dataset folder, so it trains there unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomli_w

from genfoundry.errors import Invalid


@dataclass(frozen=True)
class KohyaOptions:
    resolution: int = 1024
    batch_size: int = 1
    num_repeats: int = 10
    enable_bucket: bool = True
    class_tokens: str | None = None
    keep_tokens: int = 0
    shuffle_caption: bool = False

    def check(self) -> None:
        if not 64 <= self.resolution <= 4096 or self.resolution % 8:
            raise Invalid("resolution must be a multiple of 8 between 64 and 4096", param="resolution")
        if not 1 <= self.batch_size <= 256:
            raise Invalid("batch_size must be between 1 and 256", param="batch_size")
        if not 1 <= self.num_repeats <= 10_000:
            raise Invalid("num_repeats must be between 1 and 10000", param="num_repeats")
        if not 0 <= self.keep_tokens <= 255:
            raise Invalid("keep_tokens must be between 0 and 255", param="keep_tokens")


def kohya_dataset_config(image_dir: Path, options: KohyaOptions) -> str:
    """The TOML sd-scripts reads with --dataset_config; captions are the same-name .txt files."""
    options.check()
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
            {"resolution": options.resolution, "batch_size": options.batch_size, "subsets": [subset]},
        ],
    }
    return tomli_w.dumps(config)
