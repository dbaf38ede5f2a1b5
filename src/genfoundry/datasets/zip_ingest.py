"""Safe ZIP ingestion for image datasets: entry by entry, under caps, a reason per file, names we generate."""

from __future__ import annotations

import codecs
import json
import os
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from genfoundry.datasets.images import OUTPUT_FORMATS, NormalizedImage, normalize_image
from genfoundry.errors import GenfoundryError, TooLarge, Unprocessable

CHUNK_BYTES = 1 << 20
"""Entries are decompressed in chunks of this size, so a cap overshoots by at most one chunk."""
RATIO_FLOOR_BYTES = 1 << 20
"""The ratio cap applies past this size: small text and flat images legitimately compress beyond 100:1."""
METADATA_NAME = "metadata.jsonl"
CAPTION_SUFFIX = ".txt"
ARCHIVE_SUFFIXES = frozenset({".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".lz", ".cab"})
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})
NESTED = "nested archives are not extracted"
_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1

Status = Literal["ok", "rejected", "duplicate", "skipped"]


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


@dataclass
class ZipItem:
    """What happened to one archive entry."""

    source: str
    status: Status
    reason: str | None = None
    file: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    caption: str | None = None
    bytes: int = 0
    duplicate_of: str | None = None


@dataclass
class ZipReport:
    """Per-entry outcome of one upload, plus caption warnings that rejected nothing."""

    items: list[ZipItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        """Number of items with `status`."""
        return sum(1 for item in self.items if item.status == status)

    @property
    def accepted(self) -> int:
        return self.count("ok")

    @property
    def rejected(self) -> int:
        return self.count("rejected")

    @property
    def duplicates(self) -> int:
        return self.count("duplicate")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def total_bytes(self) -> int:
        return sum(item.bytes for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: counts first, then every item."""
        counts = {
            name: getattr(self, name) for name in ("accepted", "rejected", "duplicates", "skipped", "total_bytes")
        }
        return {**counts, "warnings": list(self.warnings), "items": [asdict(item) for item in self.items]}


class NoValidImages(Unprocessable):
    """Nothing usable was left in the upload; `report` says why for each entry."""

    code = "no_valid_images"

    def __init__(self, message: str, *, report: ZipReport) -> None:
        super().__init__(message, param="file", details=report.to_dict())
        self.report = report


DEFAULT_LIMITS = ZipLimits()


class _EntryRejected(Exception):
    """One entry is refused; the message is its report reason."""


@dataclass
class _Budget:
    """Decompressed bytes still allowed for the whole archive."""

    remaining: int
    exhausted: bool = False


@dataclass(frozen=True)
class _Entry:
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


def ingest_zip(
    zip_path: Path, out_dir: Path, *, limits: ZipLimits = DEFAULT_LIMITS, image_format: str = "JPEG"
) -> ZipReport:
    """Check, normalize and de-duplicate the images of an uploaded ZIP into `out_dir`, with captions.

    Entries are read one at a time from the archive, never extracted. Outputs are `img_NNNNNN.jpg` (or `.png`)
    plus a same-stem `.txt` caption (the kohya convention), each written to a temporary name and renamed; give a
    fresh `out_dir`, since those names restart at 1. Raises `Unprocessable`/`TooLarge` when the archive itself
    is unusable and `NoValidImages` (carrying the report) when no entry gave a valid image.
    """
    if image_format not in OUTPUT_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(OUTPUT_FORMATS)}, not {image_format!r}")
    _check_central_directory(zip_path, limits)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise Unprocessable(f"the ZIP archive is truncated or corrupt: {exc}", code="invalid_zip") from exc
    with archive:
        entries = [_classify(info) for info in archive.infolist()]
        if not entries:
            raise Unprocessable("the ZIP archive is empty", code="empty_zip")
        out_dir.mkdir(parents=True, exist_ok=True)
        report = _ingest_entries(archive, entries, out_dir, limits, image_format)
    _flush_to_disk()
    if report.accepted == 0:
        raise NoValidImages(
            f"no valid image in the ZIP archive ({report.rejected} rejected, {report.duplicates} duplicate, "
            f"{report.skipped} skipped)",
            report=report,
        )
    return report


def _ingest_entries(
    archive: zipfile.ZipFile, entries: list[_Entry], out_dir: Path, limits: ZipLimits, image_format: str
) -> ZipReport:
    """Process entries in archive order, one decoded image at a time."""
    report = ZipReport()
    budget = _Budget(limits.max_total_bytes)
    image_keys = {entry.key for entry in entries if entry.kind == "image"}
    captions_txt = {entry.key: entry for entry in entries if entry.kind == "caption" and entry.key in image_keys}
    image_paths = {"/".join(entry.parts) for entry in entries if entry.kind == "image"}
    captions_meta: dict[str, str] = {}
    for entry in entries:
        if entry.kind == "metadata":
            captions_meta.update(_metadata_captions(archive, entry, image_paths, limits, budget, report.warnings))
    suffix = ".jpg" if image_format == "JPEG" else ".png"
    first_by_hash: dict[str, ZipItem] = {}
    examined = 0
    for entry in entries:
        if entry.kind in ("dir", "metadata") or (entry.kind == "caption" and entry.key in image_keys):
            continue  # not files of their own: used captions are reported on their image
        if entry.kind == "caption":
            report.items.append(ZipItem(entry.source, "skipped", "caption file with no matching image"))
            continue
        if entry.kind != "image":
            report.items.append(ZipItem(entry.source, "skipped" if entry.kind == "skip" else "rejected", entry.reason))
            continue
        examined += 1
        try:
            if examined > limits.max_entries:
                raise _EntryRejected(f"over the {limits.max_entries}-entry limit; later entries were not read")
            image = _ingest_image(archive, entry, limits, budget, image_format)
        except _EntryRejected as exc:
            report.items.append(ZipItem(entry.source, "rejected", str(exc)))
            continue
        item = ZipItem(entry.source, "ok", sha256=image.sha256, width=image.width, height=image.height)
        caption_entry = captions_txt.get(entry.key)
        if caption_entry is not None:
            item.caption = _txt_caption(archive, caption_entry, limits, budget, report.warnings)
        if item.caption is None:
            item.caption = captions_meta.get("/".join(entry.parts))
        first = first_by_hash.get(image.sha256)
        if first is not None:
            item.status, item.reason, item.duplicate_of = "duplicate", f"same image as {first.source}", first.file
            report.items.append(item)
            continue
        first_by_hash[image.sha256] = item
        stem = f"img_{len(first_by_hash):06d}"
        item.file, item.bytes = stem + suffix, len(image.data)
        _write_atomic(out_dir / item.file, image.data)
        if item.caption is not None:
            _write_atomic(out_dir / f"{stem}.txt", item.caption.encode())
        report.items.append(item)
    return report


def _ingest_image(
    archive: zipfile.ZipFile, entry: _Entry, limits: ZipLimits, budget: _Budget, image_format: str
) -> NormalizedImage:
    """Read and normalize one image entry."""
    if posixpath.splitext(entry.parts[-1])[1].lower() in ARCHIVE_SUFFIXES:
        raise _EntryRejected(NESTED)
    data = _read_entry(archive, entry.info, limits, budget)
    if data.startswith(ARCHIVE_MAGIC) or data[257:262] == b"ustar":
        raise _EntryRejected(NESTED)
    try:
        return normalize_image(data, max_pixels=limits.max_pixels, fmt=image_format)
    except GenfoundryError as exc:
        raise _EntryRejected(exc.message) from exc


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, budget: _Budget) -> bytes:
    """Decompress one entry in chunks, counting real bytes against the entry, ratio and archive caps."""
    if budget.exhausted:
        raise _EntryRejected(_total_reason(limits))
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                total += len(chunk)
                if total > budget.remaining:
                    budget.exhausted = True
                    raise _EntryRejected(_total_reason(limits))
                _check_entry_size(total, info.compress_size, limits)
                chunks.append(chunk)
    except NotImplementedError as exc:
        raise _EntryRejected(f"unsupported compression method {info.compress_type}") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise _EntryRejected(f"corrupt ZIP entry: {exc}") from exc
    finally:
        budget.remaining -= total
    return b"".join(chunks)


def _check_entry_size(size: int, compressed: int, limits: ZipLimits) -> None:
    """Refuse an entry whose decompressed-so-far size breaks the entry or ratio cap."""
    if size > limits.max_entry_bytes:
        raise _EntryRejected(f"entry is over the {_human(limits.max_entry_bytes)} per-entry limit")
    if size > RATIO_FLOOR_BYTES and size > limits.max_ratio * max(compressed, 1):
        raise _EntryRejected(
            f"compression ratio over {limits.max_ratio:g}:1 ({_human(compressed)} expands past {_human(size)}); "
            "possible ZIP bomb"
        )


def _total_reason(limits: ZipLimits) -> str:
    return f"the archive's {_human(limits.max_total_bytes)} total uncompressed size limit was reached"


def _human(size: int) -> str:
    """Bytes as a short figure in binary units."""
    for unit, power in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << power:
            return f"{size / (1 << power):.4g} {unit}"
    return f"{size} bytes"


def _read_text(
    archive: zipfile.ZipFile, entry: _Entry, max_bytes: int, limits: ZipLimits, budget: _Budget, warnings: list[str]
) -> tuple[str | None, bool]:
    """Read at most `max_bytes` of a UTF-8 text entry (BOM tolerated); returns (text, truncated)."""
    if budget.exhausted:
        warnings.append(f"{entry.source}: not read, {_total_reason(limits)}")
        return None, False
    try:
        with archive.open(entry.info) as stream:
            data = stream.read(max_bytes + 1)  # bounded read: the size in the header is not trusted
    except (NotImplementedError, zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        warnings.append(f"{entry.source}: could not be read ({exc})")
        return None, False
    budget.remaining -= len(data)
    budget.exhausted = budget.remaining <= 0
    truncated = len(data) > max_bytes
    try:
        # final=False on a truncated read: a character cut at the cap is dropped instead of failing.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(data[:max_bytes], final=not truncated)
    except UnicodeDecodeError:
        warnings.append(f"{entry.source}: not valid UTF-8, ignored")
        return None, False
    return text, truncated


def _clean_caption(
    text: str, source: str, limits: ZipLimits, warnings: list[str], *, truncated: bool = False
) -> str | None:
    """Collapse whitespace to single spaces (kohya reads a caption file's first line only) and cap the length."""
    caption = " ".join(text.split())
    if truncated or len(caption) > limits.max_caption_chars:
        warnings.append(f"{source}: caption cut to {limits.max_caption_chars} characters")
        caption = caption[: limits.max_caption_chars].rstrip()
    return caption or None


def _txt_caption(
    archive: zipfile.ZipFile, entry: _Entry, limits: ZipLimits, budget: _Budget, warnings: list[str]
) -> str | None:
    """The caption from a same-name .txt file; unreadable captions are warnings, never rejections."""
    # UTF-8 needs at most 4 bytes a character, plus a 3-byte BOM: reading more could not change the caption.
    text, truncated = _read_text(archive, entry, limits.max_caption_chars * 4 + 3, limits, budget, warnings)
    return None if text is None else _clean_caption(text, entry.source, limits, warnings, truncated=truncated)


def _metadata_captions(
    archive: zipfile.ZipFile,
    entry: _Entry,
    image_paths: set[str],
    limits: ZipLimits,
    budget: _Budget,
    warnings: list[str],
) -> dict[str, str]:
    """Captions from a Hugging Face imagefolder `metadata.jsonl`; bad lines become warnings."""
    text, truncated = _read_text(archive, entry, limits.max_entry_bytes, limits, budget, warnings)
    if text is None:
        return {}
    if truncated:
        warnings.append(f"{entry.source}: over {_human(limits.max_entry_bytes)}; only the start was read")
    folder = entry.parts[:-1]
    captions: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{entry.source} line {number}"
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            warnings.append(f"{where}: not valid JSON")
            continue
        name = row.get("file_name") if isinstance(row, dict) else None
        caption = row.get("text", row.get("caption")) if isinstance(row, dict) else None
        if not isinstance(name, str) or not isinstance(caption, str):
            warnings.append(f'{where}: needs a "file_name" string and a "text" string')
            continue
        parts, unsafe = _split_path(name)
        if unsafe or not parts:
            warnings.append(f"{where}: file_name {name!r} is not a path inside the archive")
            continue
        path = "/".join((*folder, *parts))
        if path not in image_paths:
            warnings.append(f"{where}: no image entry named {path!r}")
            continue
        cleaned = _clean_caption(caption, where, limits, warnings)
        if cleaned is not None:
            captions[path] = cleaned
    return captions


def _display_name(info: zipfile.ZipInfo) -> str:
    """The entry name for reports; many tools write UTF-8 names without setting the UTF-8 flag."""
    if info.flag_bits & _UTF8_FLAG:
        return info.orig_filename
    try:
        # zipfile decoded the raw bytes as cp437, a lossless round trip back to those bytes.
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeError:  # not UTF-8 either: the cp437 reading maps every byte to some character
        return info.orig_filename


def _split_path(name: str) -> tuple[tuple[str, ...], str | None]:
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


def _classify(info: zipfile.ZipInfo) -> _Entry:
    """Decide from the central directory alone what an entry is; nothing is read here."""
    source = _display_name(info)
    parts, unsafe = _split_path(source)
    mode = info.external_attr >> 16
    reason = unsafe
    if reason is None and stat.S_ISLNK(mode):
        reason = "symbolic link"
    elif reason is None and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        reason = "special file (device, FIFO or socket)"
    if reason is not None:
        return _Entry(info, source, parts, "reject", reason)
    if source.replace("\\", "/").endswith("/") or stat.S_ISDIR(mode) or not parts:
        return _Entry(info, source, parts, "dir")
    if parts[0] == "__MACOSX":
        return _Entry(info, source, parts, "skip", "macOS resource data")
    if any(part.startswith(".") for part in parts):
        return _Entry(info, source, parts, "skip", "hidden file")
    if parts[-1].lower() in SYSTEM_FILES:
        return _Entry(info, source, parts, "skip", "system file")
    if info.flag_bits & _ENCRYPTED_FLAG:
        return _Entry(info, source, parts, "reject", "encrypted entry")
    if parts[-1] == METADATA_NAME:
        return _Entry(info, source, parts, "metadata")
    if parts[-1].lower().endswith(CAPTION_SUFFIX):
        return _Entry(info, source, parts, "caption")
    return _Entry(info, source, parts, "image")


def _check_central_directory(zip_path: Path, limits: ZipLimits) -> None:
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
                f"the ZIP archive's file list is {_human(dir_size)}; the limit is {_human(limits.max_directory_bytes)}",
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


def _write_atomic(path: Path, data: bytes) -> None:
    """Write under a hidden temporary name, then rename: readers never see half a file."""
    temp = path.with_name(f".{path.name}.part")
    try:
        temp.write_bytes(data)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _flush_to_disk() -> None:
    """One durability barrier for the whole batch before the report is returned (and trusted).

    A per-file fsync tripled the time for small images; a crash mid-run leaves a partial folder either way,
    so the run is what must be redone, and the rename already keeps every visible file whole.
    """
    os.sync()
