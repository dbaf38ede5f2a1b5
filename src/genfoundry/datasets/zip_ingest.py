"""Safe ZIP ingestion for image datasets: entry by entry, under caps, a reason per file, names we generate."""

from __future__ import annotations

import os
import posixpath
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from genfoundry.datasets.images import OUTPUT_FORMATS, NormalizedImage, normalize_image
from genfoundry.datasets.zip_captions import metadata_captions, txt_caption
from genfoundry.datasets.zip_safety import (
    DEFAULT_LIMITS,
    Budget,
    Entry,
    ZipLimits,
    check_central_directory,
    classify,
    human,
    total_reason,
)
from genfoundry.errors import GenfoundryError, Unprocessable

__all__ = ["CHUNK_BYTES", "DEFAULT_LIMITS", "NoValidImages", "ZipItem", "ZipLimits", "ZipReport", "ingest_zip"]

CHUNK_BYTES = 1 << 20
"""Entries are decompressed in chunks of this size, so a cap overshoots by at most one chunk."""
RATIO_FLOOR_BYTES = 1 << 20
"""The ratio cap applies past this size: small text and flat images legitimately compress beyond 100:1."""
ARCHIVE_SUFFIXES = frozenset({".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".lz", ".cab"})
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")
NESTED = "nested archives are not extracted"

Status = Literal["ok", "rejected", "duplicate", "skipped"]


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


class _EntryRejected(Exception):
    """One entry is refused; the message is its report reason."""


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
    check_central_directory(zip_path, limits)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise Unprocessable(f"the ZIP archive is truncated or corrupt: {exc}", code="invalid_zip") from exc
    with archive:
        entries = [classify(info) for info in archive.infolist()]
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
    archive: zipfile.ZipFile, entries: list[Entry], out_dir: Path, limits: ZipLimits, image_format: str
) -> ZipReport:
    """Process entries in archive order, one decoded image at a time."""
    report = ZipReport()
    budget = Budget(limits.max_total_bytes)
    image_keys = {entry.key for entry in entries if entry.kind == "image"}
    captions_txt = {entry.key: entry for entry in entries if entry.kind == "caption" and entry.key in image_keys}
    image_paths = {"/".join(entry.parts) for entry in entries if entry.kind == "image"}
    captions_meta: dict[str, str] = {}
    for entry in entries:
        if entry.kind == "metadata":
            captions_meta.update(metadata_captions(archive, entry, image_paths, limits, budget, report.warnings))
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
            item.caption = txt_caption(archive, caption_entry, limits, budget, report.warnings)
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
    archive: zipfile.ZipFile, entry: Entry, limits: ZipLimits, budget: Budget, image_format: str
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


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, budget: Budget) -> bytes:
    """Decompress one entry in chunks, counting real bytes against the entry, ratio and archive caps."""
    if budget.exhausted:
        raise _EntryRejected(total_reason(limits))
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                total += len(chunk)
                if total > budget.remaining:
                    budget.exhausted = True
                    raise _EntryRejected(total_reason(limits))
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
        raise _EntryRejected(f"entry is over the {human(limits.max_entry_bytes)} per-entry limit")
    if size > RATIO_FLOOR_BYTES and size > limits.max_ratio * max(compressed, 1):
        raise _EntryRejected(
            f"compression ratio over {limits.max_ratio:g}:1 ({human(compressed)} expands past {human(size)}); "
            "possible ZIP bomb"
        )


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
