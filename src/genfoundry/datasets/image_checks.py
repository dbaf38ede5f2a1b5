"""Opening untrusted image bytes safely: header checked before any pixel is decoded."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError, features

from genfoundry.errors import Invalid, TooLarge, Unprocessable

# MPO is how Pillow names many camera JPEGs (with a second, preview frame).
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"})


def open_checked_image(data: bytes, *, max_pixels: int, param: str = "image") -> Image.Image:
    """Decode `data` into an RGB image, refusing non-images, truncated files and oversized headers."""
    return _open_checked(data, max_pixels=max_pixels, param=param).convert("RGB")


def open_checked_mask(data: bytes, *, max_pixels: int, param: str = "mask") -> Image.Image:
    """An edit's mask as OpenAI defines it (a PNG whose fully transparent pixels mark the area to edit), turned
    into diffusers' convention: an "L" image, white where the model repaints."""
    image = _open_checked(data, max_pixels=max_pixels, param=param)
    if image.format != "PNG":
        raise Invalid(f"the mask must be a PNG, got {image.format}", param=param)
    if "A" not in image.getbands() and "transparency" not in image.info:
        raise Invalid("the mask has no alpha channel: its transparent pixels mark the area to edit", param=param)
    alpha = image.convert("RGBA").getchannel("A")
    return alpha.point(lambda value: 255 if value == 0 else 0)


def _open_checked(data: bytes, *, max_pixels: int, param: str) -> Image.Image:
    if not data:
        raise Unprocessable("the uploaded image is empty", param=param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise Unprocessable(f"unsupported image format {image.format}", param=param)
            width, height = image.size
            if width * height > max_pixels:
                raise TooLarge(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels", param=param)
            image.load()
    except (TooLarge, Unprocessable):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"image exceeds the pixel limit: {exc}", param=param) from exc
    except UnidentifiedImageError as exc:
        raise Unprocessable("the upload is not a recognised image file", param=param) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise Unprocessable(f"the image could not be decoded (truncated or corrupt): {exc}", param=param) from exc
    return image


def _dataset_formats() -> tuple[str, ...]:
    """Formats a dataset accepts; AVIF only where this Pillow build can decode it."""
    formats = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
    return (*formats, "AVIF") if features.check("avif") else formats


DATASET_FORMATS = _dataset_formats()
"""Passed to `Image.open(formats=...)`, so Pillow's exotic parsers (EPS runs Ghostscript) never see uploads."""

# Well-known files users put in image folders, named so a rejection says more than "not an image".
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"%!PS", "PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"qoif", "QOI"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"RIFF", "RIFF (audio or video)"),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


def sniff_unsupported_format(data: bytes) -> str | None:
    """Name a well-known non-dataset format from its first bytes, or None when it is not recognised."""
    head = data[:1024]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIC"
        return "AVIF" if brand in (b"avif", b"avis") else "video (MP4/MOV)"
    lowered = head.lstrip().lower()
    if b"<svg" in lowered and lowered.startswith((b"<?xml", b"<svg", b"<!doctype svg", b"<!--")):
        return "SVG"
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None
