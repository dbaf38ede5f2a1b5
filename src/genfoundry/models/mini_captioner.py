"""mini-captioner: a small Florence-2 (the real transformers classes and layout) that learns to caption the synthetic
scenes of `mini_scenes`, so an offline captioning job writes "a red circle on a blue background" for such an image.

This module holds its architecture (untrained), how it is read back (the held-out accuracy the model card, the bench
and the tests measure through the captioning engine) and `install`; `scripts/train_mini_models.py captioner` trains
it and the weights ship in the package (`genfoundry/data/mini/captioner`), installed by `genfoundry models build-tiny`.
"""

from __future__ import annotations

import functools
import random
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.models.tiny_captioner import FlorenceSizes

if TYPE_CHECKING:
    from PIL.Image import Image

    from genfoundry.inference.caption import Captioner
    from genfoundry.models.mini_scenes import Scene

MINI_CAPTIONER_ID = "mini-captioner"
MINI_CAPTIONER_SUBDIR = "mini-captioner"
# The task it was trained on; Florence2Processor turns it into "What does the image describe?".
TASK = "<CAPTION>"
# 64 px like the scenes: a 16x16 grid after the first stage, 8x8 (64 image tokens) after the second.
SIZES = FlorenceSizes(
    image_size=64,
    depths=(1, 2),
    embed_dim=(32, 64),
    num_heads=(2, 4),
    window_size=4,
    d_model=64,
    layers=2,
    heads=4,
    ffn_dim=128,
    max_positions=256,
    vision_positions=8,
    temporal_positions=4,
    init_std=0.02,
)
_BPE_MERGES = 800


@functools.lru_cache(maxsize=1)
def _corpus() -> tuple[str, ...]:
    from genfoundry.models.mini_sd15 import corpus

    return corpus()


def build_untrained(seed: int = 0) -> tuple[Any, Any]:
    """(Florence2ForConditionalGeneration, Florence2Processor) with fresh weights and a BPE learned from the scene
    captions, so every vocabulary word is one token."""
    from genfoundry.models.tiny_captioner import build_florence2, make_florence2_tokenizer

    tokenizer = make_florence2_tokenizer(corpus=_corpus(), merge_count=_BPE_MERGES)
    return build_florence2(SIZES, seed, tokenizer=tokenizer)


def target_caption(scene: Scene) -> str:
    """What the captioner is taught to write for a scene: colour, shape and background, no position."""
    from genfoundry.models.mini_scenes import Scene

    return Scene(scene.colour, scene.shape, scene.background).caption


def caption_is_right(caption: str, scene: Scene) -> bool:
    """The caption names the scene's shape colour, shape and background (in the vocabulary's grammar)."""
    from genfoundry.models.mini_scenes import parse_caption

    read = parse_caption(caption)
    return read is not None and (read.colour, read.shape, read.background) == (
        scene.colour,
        scene.shape,
        scene.background,
    )


def held_out_images(count: int | None = None) -> tuple[list[Scene], list[Image]]:
    """The first `count` (default all 64) held-out scenes and a varied render of each (seeded by its index)."""
    from genfoundry.models.mini_scenes import held_out_scenes, render

    scenes = held_out_scenes()[:count]
    return scenes, [render(scene, random.Random(i)) for i, scene in enumerate(scenes)]


def held_out_accuracy(captioner: Captioner, count: int | None = None) -> dict[str, Any]:
    """Caption the held-out images through the captioning engine; the share right and a few wrong examples."""
    scenes, images = held_out_images(count)
    captions = captioner.caption_batched(images, batch_size=16)
    wrong = [(s.caption, c) for s, c in zip(scenes, captions, strict=True) if not caption_is_right(c, s)]
    return {"accuracy": round(1 - len(wrong) / len(scenes), 3), "images": len(scenes), "wrong": wrong[:8]}


def spec(folder: Path) -> Any:
    """The captioner catalog entry for mini-captioner in `folder`."""
    from genfoundry.inference.caption import CaptionerSpec

    return CaptionerSpec(
        id=MINI_CAPTIONER_ID,
        kind="florence2",
        source=str(folder),
        dtype="float32",
        default_prompt=TASK,
        description="Florence-2-layout mini captioner pretrained on coloured shapes (docs/mini-models.md)",
    )


def packaged_dir() -> Path | None:
    """The pretrained weights shipped in the package, or None in a checkout where they were never trained."""
    folder = Path(str(resources.files("genfoundry").joinpath("data", "mini", "captioner")))
    return folder if (folder / "model.safetensors").exists() else None


def installed_dir(tiny_dir: Path) -> Path:
    """Where `models build-tiny` puts mini-captioner inside the tiny-models dir."""
    return tiny_dir / MINI_CAPTIONER_SUBDIR


def install(tiny_dir: Path, *, force: bool = False) -> tuple[Path | None, bool]:
    """Copy the packaged mini-captioner into the tiny-models folder (again when the package's weights changed).

    Returns (its folder, whether it was copied now); (None, False) when the package holds no weights."""
    from genfoundry.models.mini_install import install_packaged

    return install_packaged(packaged_dir(), tiny_dir, MINI_CAPTIONER_SUBDIR, force=force)
