"""Copying a mini model's packaged weights into the home: again only when the package's weights changed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.safetensors")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def install_packaged(
    source: Path | None, tiny_dir: Path, subdir: str, *, force: bool = False
) -> tuple[Path | None, bool]:
    """Copy `source` to `tiny_dir/subdir` unless the copy there has the same weights (staged, then renamed, so a
    crash never leaves a half-copied model). Returns (its folder, whether it was copied now); (None, False) when
    the package holds no weights (`source` None)."""
    if source is None:
        return None, False
    target = tiny_dir / subdir
    marker = target / ".fingerprint"
    fingerprint = _fingerprint(source)
    if not force and marker.exists() and marker.read_text() == fingerprint:
        return target, False
    staging = tiny_dir / f".installing-{subdir}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    (staging / ".fingerprint").write_text(fingerprint)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    return target, True
