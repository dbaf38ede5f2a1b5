"""Captions for ZIP-ingested images: a same-name `.txt` file or a `metadata.jsonl`, read under the caps."""

from __future__ import annotations

import codecs
import json
import zipfile
import zlib

from genfoundry.datasets.zip_safety import Budget, Entry, ZipLimits, human, split_path, total_reason


def _read_text(
    archive: zipfile.ZipFile, entry: Entry, max_bytes: int, limits: ZipLimits, budget: Budget, warnings: list[str]
) -> tuple[str | None, bool]:
    """Read at most `max_bytes` of a UTF-8 text entry (BOM tolerated); returns (text, truncated)."""
    if budget.exhausted:
        warnings.append(f"{entry.source}: not read, {total_reason(limits)}")
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


def txt_caption(
    archive: zipfile.ZipFile, entry: Entry, limits: ZipLimits, budget: Budget, warnings: list[str]
) -> str | None:
    """The caption from a same-name .txt file; unreadable captions are warnings, never rejections."""
    # UTF-8 needs at most 4 bytes a character, plus a 3-byte BOM: reading more could not change the caption.
    text, truncated = _read_text(archive, entry, limits.max_caption_chars * 4 + 3, limits, budget, warnings)
    return None if text is None else _clean_caption(text, entry.source, limits, warnings, truncated=truncated)


def metadata_captions(
    archive: zipfile.ZipFile,
    entry: Entry,
    image_paths: set[str],
    limits: ZipLimits,
    budget: Budget,
    warnings: list[str],
) -> dict[str, str]:
    """Captions from a Hugging Face imagefolder `metadata.jsonl`; bad lines become warnings."""
    text, truncated = _read_text(archive, entry, limits.max_entry_bytes, limits, budget, warnings)
    if text is None:
        return {}
    if truncated:
        warnings.append(f"{entry.source}: over {human(limits.max_entry_bytes)}; only the start was read")
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
        parts, unsafe = split_path(name)
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
