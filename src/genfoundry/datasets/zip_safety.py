"""ZIP archive safety: the caps, the central-directory pre-check, and entry classification from names and flags."""

from __future__ import annotations

import os
import posixpath
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genfoundry.errors import TooLarge, Unprocessable

METADATA_NAME = "metadata.jsonl"
CAPTION_SUFFIX = ".txt"
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1


@dataclass(frozen=True)
class ZipLimits:
    """Caps for one upload: per-entry caps reject that entry; the central-directory caps refuse the upload."""

    max_entries: int = 10_000  # image entries examined; later ones are rejected with a reason
    max_total_bytes: int = 2 * 1024**3  # decompressed bytes read from the whole archive
    max_entry_bytes: int = 64 * 1024**2  # decompressed bytes of one entry (a 4096² BMP is 48 MiB)
    max_ratio: float = 100.0  # decompressed / compressed bytes of one entry
    max_pixels: int = 16_777_216  # 4096²
    max_caption_chars: int = 2000
    max_archive_entries: int = 50_000  # records in the central directory (10k images + captions + macOS extras)
    max_directory_bytes: int = 16 * 1024**2  # zipfile reads the central directory whole and keeps every record


DEFAULT_LIMITS = ZipLimits()


@dataclass
class Budget:
    """Decompressed bytes still allowed for the whole archive."""

    remaining: int
    exhausted: bool = False


def total_reason(limits: ZipLimits) -> str:
    return f"the archive's {human(limits.max_total_bytes)} total uncompressed size limit was reached"


def human(size: int) -> str:
    """Bytes as a short figure in binary units."""
    for unit, power in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << power:
            return f"{size / (1 << power):.4g} {unit}"
    return f"{size} bytes"


def check_central_directory(zip_path: Path, limits: ZipLimits) -> None:
    """Count central-directory records before zipfile parses them, since it keeps one object per record."""
    with zip_path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        tail_start = max(0, size - 22 - 0xFFFF)  # end record plus the longest archive comment
        fh.seek(tail_start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            raise Unprocessable("the file is not a ZIP archive, or its end is missing", code="invalid_zip")
        _, _, _, _, declared, dir_size, _, _ = struct.unpack_from("<4s4H2LH", tail, at)
        dir_end = tail_start + at
        if dir_end >= 76:  # zip64: a locator, then the zip64 end record, sit right before the end record
            fh.seek(dir_end - 76)
            record = fh.read(76)
            if record[56:60] == b"PK\x06\x07" and record[:4] == b"PK\x06\x06":
                declared, dir_size = struct.unpack_from("<2Q", record, 32)
                dir_end -= 76
        if declared > limits.max_archive_entries:
            raise TooLarge(_too_many(declared, limits), code="too_many_entries")
        if dir_size > limits.max_directory_bytes:
            raise TooLarge(
                f"the ZIP archive's file list is {human(dir_size)}; the limit is {human(limits.max_directory_bytes)}",
                code="too_many_entries",
            )
        if dir_size > dir_end:
            raise Unprocessable("the ZIP archive is truncated or corrupt (central directory)", code="invalid_zip")
        fh.seek(dir_end - dir_size)
        directory = fh.read(dir_size)
    # The declared count can lie; zipfile walks records until the directory's bytes run out, and so do we.
    records, pos = 0, 0
    while pos + 46 <= len(directory) and directory[pos : pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<3H", directory, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
        records += 1
        if records > limits.max_archive_entries:
            raise TooLarge(_too_many(records, limits), code="too_many_entries")


def _too_many(count: int, limits: ZipLimits) -> str:
    return f"the ZIP archive lists {count} entries or more; the limit is {limits.max_archive_entries}"


@dataclass(frozen=True)
class Entry:
    """An archive entry as classified from the central directory alone."""

    info: zipfile.ZipInfo
    source: str
    parts: tuple[str, ...]
    kind: Literal["image", "caption", "metadata", "skip", "reject", "dir"]
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(folder, stem): an image and its same-name caption share it."""
        return "/".join(self.parts[:-1]), posixpath.splitext(self.parts[-1])[0]


def _display_name(info: zipfile.ZipInfo) -> str:
    """The entry name for reports; many tools write UTF-8 names without setting the UTF-8 flag."""
    if info.flag_bits & _UTF8_FLAG:
        return info.orig_filename
    try:
        # zipfile decoded the raw bytes as cp437, a lossless round trip back to those bytes.
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeError:  # not UTF-8 either: the cp437 reading maps every byte to some character
        return info.orig_filename


def split_path(name: str) -> tuple[tuple[str, ...], str | None]:
    """Path components of an entry name, or the reason it could escape a folder."""
    if "\x00" in name:
        return (), "NUL byte in the entry name"
    path = name.replace("\\", "/")  # old Windows tools write backslashes; `..\\x` must not slip through
    if path.startswith("/"):
        return (), "absolute path"
    if _DRIVE.match(path):
        return (), "drive letter in the path"
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if ".." in parts:
        return (), "parent-directory ('..') component in the path"
    return parts, None


def classify(info: zipfile.ZipInfo) -> Entry:
    """Decide from the central directory alone what an entry is; nothing is read here."""
    source = _display_name(info)
    parts, unsafe = split_path(source)
    mode = info.external_attr >> 16
    reason = unsafe
    if reason is None and stat.S_ISLNK(mode):
        reason = "symbolic link"
    elif reason is None and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        reason = "special file (device, FIFO or socket)"
    if reason is not None:
        return Entry(info, source, parts, "reject", reason)
    if source.replace("\\", "/").endswith("/") or stat.S_ISDIR(mode) or not parts:
        return Entry(info, source, parts, "dir")
    if parts[0] == "__MACOSX":
        return Entry(info, source, parts, "skip", "macOS resource data")
    if any(part.startswith(".") for part in parts):
        return Entry(info, source, parts, "skip", "hidden file")
    if parts[-1].lower() in SYSTEM_FILES:
        return Entry(info, source, parts, "skip", "system file")
    if info.flag_bits & _ENCRYPTED_FLAG:
        return Entry(info, source, parts, "reject", "encrypted entry")
    if parts[-1] == METADATA_NAME:
        return Entry(info, source, parts, "metadata")
    if parts[-1].lower().endswith(CAPTION_SUFFIX):
        return Entry(info, source, parts, "caption")
    return Entry(info, source, parts, "image")
