"""Encoding a generated image as PNG, JPEG or WebP (OpenAI's `output_format`, `output_compression`)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
_MEDIA_BY_EXTENSION = {extension: MEDIA_TYPES[fmt] for fmt, extension in EXTENSIONS.items()}
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
# zlib level 1, not Pillow's 6: on photos at 512² and 1024² it encodes 2.3-3.8x faster for files 6-21% larger (bench
# numbers in bench/RESULTS.md, "issue 18 gap 2"); level 0 stores the pixels raw, about twice the size.
PNG_COMPRESS_LEVEL = 1


def encode_image(image: Image.Image, output_format: str = "png", compression: int | None = None) -> bytes:
    """`compression` is OpenAI's 0–100 for JPEG and WebP: 100 (the default) keeps the most, lower is smaller."""
    buffer = io.BytesIO()
    if output_format == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        quality = 100 if compression is None else compression
        image.convert("RGB").save(buffer, format=_PILLOW_FORMATS[output_format], quality=quality)
    return buffer.getvalue()


def media_type_of_key(key: str) -> str:
    """The content type of a stored image, from the extension its key was written with (PNG before formats)."""
    return _MEDIA_BY_EXTENSION.get(key.rsplit(".", 1)[-1], "image/png")
