"""Opening untrusted image bytes safely: header checked before any pixel is decoded."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from genfoundry.errors import TooLarge, Unprocessable

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"})


def open_checked_image(data: bytes, *, max_pixels: int, param: str = "image") -> Image.Image:
    """Decode `data` into an RGB image, refusing non-images, truncated files and oversized headers."""
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
    return image.convert("RGB")
