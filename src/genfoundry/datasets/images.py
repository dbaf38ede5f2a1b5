"""Dataset images: untrusted bytes → one clean RGB file (upright, metadata-free) and a content hash."""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from genfoundry.datasets.image_checks import DATASET_FORMATS, sniff_unsupported_format
from genfoundry.errors import TooLarge, Unprocessable

OUTPUT_FORMATS = frozenset({"JPEG", "PNG"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


@dataclass(frozen=True)
class NormalizedImage:
    """An image re-encoded for training.

    `sha256` hashes the decoded RGB pixels and the size, not the file bytes: the same picture saved losslessly
    in another format, or with other metadata, dedupes; a lossy re-encode changes the pixels and does not.
    """

    data: bytes
    width: int
    height: int
    sha256: str
    source_format: str


def normalize_image(data: bytes, *, max_pixels: int, fmt: str = "JPEG", quality: int = 95) -> NormalizedImage:
    """Decode untrusted bytes (first frame), apply EXIF orientation, convert to RGB, strip metadata, re-encode.

    Raises `Unprocessable` (not an image, corrupt, unsupported format or colour mode) or `TooLarge` (pixel cap,
    checked on the header before any pixel is decoded); `message` is a short reason fit for a per-file report.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"fmt must be one of {sorted(OUTPUT_FORMATS)}, not {fmt!r}")
    image = _open_header(data, max_pixels=max_pixels)
    source_format = image.format or "unknown"
    try:
        image.load()  # decodes the first frame only: animations keep frame 0
    except Exception as exc:  # untrusted bytes through C decoders: any failure is this file's fault, not ours
        raise Unprocessable("truncated or corrupt image") from exc
    rgb = _to_rgb(_to_srgb(_upright(image)))
    rgb.info = {}  # encoders copy some keys (ICC, comments) from info: start from nothing
    width, height = rgb.size
    digest = hashlib.sha256(f"{width}x{height}\n".encode())
    digest.update(rgb.tobytes())
    out = io.BytesIO()
    if fmt == "JPEG":
        rgb.save(out, format="JPEG", quality=quality)
    else:
        rgb.save(out, format="PNG")
    return NormalizedImage(out.getvalue(), width, height, digest.hexdigest(), source_format)


def _open_header(data: bytes, *, max_pixels: int) -> Image.Image:
    """Parse only the header, refusing non-images, other formats and oversized images before decoding."""
    if not data:
        raise Unprocessable("empty file")
    try:
        image = Image.open(io.BytesIO(data), formats=DATASET_FORMATS)
    except Image.DecompressionBombError as exc:
        size = _declared_size(data)
        shown = f"{size[0]}x{size[1]} pixels" if size else "too many pixels"
        raise TooLarge(f"image is {shown}, over the {max_pixels}-pixel limit") from exc
    except UnidentifiedImageError as exc:
        name = sniff_unsupported_format(data)
        raise Unprocessable(f"unsupported format {name}" if name else "not an image") from exc
    except Exception as exc:  # a header a plugin accepted and then choked on
        raise Unprocessable("truncated or corrupt image") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise TooLarge(f"image is {width}x{height} pixels, over the {max_pixels}-pixel limit")
    return image


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """The size a header declares, read through the format plugin itself: Image.open's bomb check discards it."""
    for name in DATASET_FORMATS:
        factory, accept = Image.OPEN[name]
        if accept is not None and accept(data[:16]) is not True:
            continue
        with contextlib.suppress(Exception):  # not this plugin's format after all: try the next
            return factory(io.BytesIO(data), "").size  # parses the header only; nothing is decoded
    return None


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation so the pixels are upright once the EXIF block is dropped."""
    # Unreadable EXIF: the pixels are still good, keep them as stored.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)
    return image


@lru_cache(maxsize=1)
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    """The sRGB target profile, built once."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert through an embedded ICC profile (Display P3 photos, CMYK print files) so colours survive stripping."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _srgb_profile(), outputMode="RGB")
    except Exception:  # a broken or mismatched profile: fall back to Pillow's plain conversion
        return image
    return converted if converted is not None else image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit RGB; transparency is composited on white."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow clips 16-bit samples to 255 when converting; scale them to 8 bits instead.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise Unprocessable(f"unsupported colour mode {image.mode}") from exc
