"""Captioning throughput: one batched generate per 16 images vs one image at a time, same captioner, same run
(target ratio >= 1.5 on the tiny captioner on CPU). `--sized` uses a Florence-2-base-sized random-weight captioner
(real layer sizes, 768 px input; meant for a GPU)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.common import p50, report, timed
from genfoundry.inference.caption import Captioner, CaptionerSpec


def make_images(n: int, size: tuple[int, int]) -> list[Image.Image]:
    """`n` different images (colour fields plus noise), like a small dataset of photos."""
    rng = np.random.default_rng(0)
    width, height = size
    images = []
    for _ in range(n):
        base = rng.integers(0, 256, size=3)
        noise = rng.integers(-40, 40, size=(height, width, 3))
        images.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return images


def build(args: argparse.Namespace, root: Path, device: str) -> CaptionerSpec:
    """Build the captioner into `root` and describe it as a catalog entry would."""
    if args.sized:
        from genfoundry.models.tiny_captioner import build_florence2_sized_captioner

        dtype = "float16" if device == "cuda" else "float32"  # fp16 matmuls are slow or missing on CPU
        folder = build_florence2_sized_captioner(root / "sized", dtype=dtype)
        return CaptionerSpec(id="florence-2-base-sized", kind="florence2", source=str(folder), dtype=dtype)
    from genfoundry.models.tiny_captioner import TINY_CAPTIONER_ID, build_tiny_captioner

    folder = build_tiny_captioner(root / "tiny")
    return CaptionerSpec(id=TINY_CAPTIONER_ID, kind="florence2", source=str(folder), dtype="float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sized", action="store_true", help="Florence-2-base-sized random weights (for a GPU)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both modes, alternating which goes first")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--prompt", default="<DETAILED_CAPTION>")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(prefix="genfoundry-bench-caption-") as tmp:
        spec = build(args, Path(tmp), device)
        captioner = Captioner(spec, device=device)
        images = make_images(args.images, (640, 480) if args.sized else (40, 30))
        prompt, max_new_tokens = args.prompt, args.max_new_tokens

        def sync() -> None:
            if device == "cuda":
                torch.cuda.synchronize()

        def batched() -> None:
            captioner.caption_batched(images, batch_size=args.batch_size, prompt=prompt, max_new_tokens=max_new_tokens)
            sync()

        def one_at_a_time() -> None:
            for image in images:
                captioner.caption([image], prompt=prompt, max_new_tokens=max_new_tokens)
            sync()

        # Load, then warm both shapes up before timing anything.
        captioner.caption(images[: args.batch_size], prompt=prompt, max_new_tokens=max_new_tokens)
        captioner.caption(images[:1], prompt=prompt, max_new_tokens=max_new_tokens)
        batched_s: list[float] = []
        single_s: list[float] = []
        for round_index in range(args.rounds):
            # Alternate which mode runs first so warm caches and clock drift do not favour one of them.
            if round_index % 2 == 0:
                batched_s.append(timed(batched))
                single_s.append(timed(one_at_a_time))
            else:
                single_s.append(timed(one_at_a_time))
                batched_s.append(timed(batched))

    batched_rate = args.images / p50(batched_s)
    single_rate = args.images / p50(single_s)
    report(
        f"Captioning: {spec.id} on {device} ({spec.dtype}), {args.images} images, {args.max_new_tokens} new tokens, "
        f"greedy, {args.rounds} rounds",
        [
            (f"batched (batch {args.batch_size}), p50", f"{p50(batched_s):.2f} s  ({batched_rate:.1f} img/s)"),
            ("one image at a time, p50", f"{p50(single_s):.2f} s  ({single_rate:.1f} img/s)"),
            ("ratio (batched / one at a time, img/s)", f"{batched_rate / single_rate:.2f}  (target >= 1.5)"),
        ],
    )


if __name__ == "__main__":
    main()
