"""Hostile and ordinary ZIP uploads built in code: images, bomb, links, bad names, captions."""

from __future__ import annotations

import io
import random
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, PngImagePlugin

ZERO_CHUNK = bytes(1 << 20)


@dataclass(frozen=True)
class Entry:
    """One entry to write: `name` as text (zipfile encodes it) or raw bytes written without the UTF-8 flag."""

    name: str | bytes
    data: bytes = b""
    mode: int | None = None  # Unix st_mode stored in external_attr's high 16 bits
    flag_bits: int = 0
    compress_type: int = zipfile.ZIP_DEFLATED


class _RawNameInfo(zipfile.ZipInfo):
    """A ZipInfo that writes its name's bytes verbatim, as old Windows and Linux tools do (no UTF-8 flag)."""

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw.decode("cp437"))
        self.raw_name = raw

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's private hook, hence the name
        return self.raw_name, self.flag_bits & ~0x800


def write_zip(path: Path, entries: list[Entry]) -> Path:
    """Write `entries` in order into a new ZIP at `path`."""
    with zipfile.ZipFile(path, "w") as zf:
        for entry in entries:
            info = _RawNameInfo(entry.name) if isinstance(entry.name, bytes) else zipfile.ZipInfo(entry.name)
            info.compress_type = entry.compress_type
            if entry.mode is not None:
                info.external_attr = entry.mode << 16
            zf.writestr(info, entry.data)
    for index, entry in enumerate(entries):
        if entry.flag_bits:
            _patch_flag_bits(path, index, entry.flag_bits)
    return path


def _patch_flag_bits(path: Path, index: int, bits: int) -> None:
    """Set general-purpose flag bits on entry `index` (zipfile resets them on write), in both headers."""
    with zipfile.ZipFile(path) as zf:
        local = zf.infolist()[index].header_offset
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    for _ in range(index):
        central += 46 + sum(struct.unpack_from("<3H", data, central + 28))
    for offset in (local + 6, central + 8):
        data[offset : offset + 2] = struct.pack("<H", struct.unpack_from("<H", data, offset)[0] | bits)
    path.write_bytes(bytes(data))


def write_zero_bomb(path: Path, *, size: int = 1 << 30, name: str = "bomb.jpg") -> Path:
    """One entry of `size` zero bytes, streamed in (never held whole); deflate makes 1 GiB about 1 MB."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w", force_zip64=True) as fh:
        for _ in range(size // len(ZERO_CHUNK)):
            fh.write(ZERO_CHUNK)
    return path


def write_many(path: Path, count: int, data: bytes = b"x") -> Path:
    """`count` tiny stored entries."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for index in range(count):
            zf.writestr(f"f/{index:05d}.jpg", data)
    return path


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """Encode an image in memory."""
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def tiny_png(index: int, size: int = 8) -> bytes:
    """A distinct small PNG per index (its colour encodes the index)."""
    return encode(Image.new("RGB", (size, size), (index & 255, (index >> 8) & 255, (index >> 16) & 255)))


def noise_jpeg(size: tuple[int, int] = (64, 64), seed: int = 0) -> bytes:
    """A JPEG of pseudo-random pixels, so truncating it cuts real entropy-coded data."""
    raw = random.Random(seed).randbytes(size[0] * size[1] * 3)
    return encode(Image.frombytes("RGB", size, raw), "JPEG", quality=90)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 2, rows: bytes = b"") -> bytes:
    """A hand-made PNG whose IHDR declares any size; `rows` (filter byte + samples per row) go in one IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def png_rgb16(width: int = 4, height: int = 4, value: int = 0x8000) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), every sample `value`."""
    row = b"\x00" + struct.pack(">H", value) * 3 * width
    return png_declaring(width, height, bit_depth=16, colour_type=2, rows=row * height)


def png_gray16(value: int = 0x8000, size: int = 4) -> bytes:
    """A 16-bit greyscale PNG (mode I;16)."""
    image = Image.new("I;16", (size, size))
    image.putdata([value] * size * size)
    return encode(image)


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG of pure red (no cyan, full magenta and yellow)."""
    return encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95)


def animated_gif() -> bytes:
    """Two frames: green then blue."""
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def rotated_jpeg(width: int = 16, height: int = 8) -> bytes:
    """A landscape JPEG, left half red and right half blue, tagged EXIF orientation 6 (shown rotated 90° clockwise,
    so red on top), with an sRGB ICC profile and a comment."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "CameraMaker"  # Make: one more tag that must not survive
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (width // 2, 0, width, height))
    return encode(image, "JPEG", exif=exif.tobytes(), icc_profile=icc, comment=b"shot at home", quality=95)


def png_with_text() -> bytes:
    """A half-transparent red RGBA PNG carrying a text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret location")
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 128))
    return encode(image, pnginfo=info)


def symlink_mode() -> int:
    return stat.S_IFLNK | 0o777


def fifo_mode() -> int:
    return stat.S_IFIFO | 0o644
