"""Trained models (full fine-tunes) as private bases: a TOML registry under <home>/models/trained.

Each entry names its owner; the catalog shows it to that owner only (`Catalog.get_visible` / `visible`).
The registry is rewritten whole under a lock (temp file, fsync, rename), so readers in other processes see
the old or the new file, never half of one, and two jobs finishing at once both land.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genfoundry.catalog import FAMILIES, TRAINED_REGISTRY_FILE, GenerationDefaults
from genfoundry.errors import Conflict, Invalid
from genfoundry.repo.ids import new_id

TRAINED_DIR = "trained"
_LOCK_FILE = ".registry.lock"
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def trained_models_dir(models_dir: Path) -> Path:
    """Where trained models and their registry live: `<home>/models/trained`."""
    return Path(models_dir) / TRAINED_DIR


def register_trained_model(
    *,
    models_dir: Path,
    owner_id: str,
    family: str,
    source_dir: Path,
    model_id: str | None = None,
    description: str = "",
    base_id: str | None = None,
    defaults: GenerationDefaults | None = None,
    move: bool = False,
) -> str:
    """Add a pipeline folder as `owner_id`'s model and return its id (a new `model_<hex>` id when None).

    `move=True` moves the folder to `<models_dir>/trained/<id>` (the registry then records it relative to
    itself); otherwise the entry points at `source_dir` where it is. `defaults` are the generation
    defaults, e.g. the base's. An id already registered is a Conflict.
    """
    if family not in FAMILIES:
        raise Invalid(f"family must be one of {', '.join(FAMILIES)}; got {family!r}", param="family")
    if not owner_id:
        raise Invalid("a trained model needs an owner", param="owner_id")
    model_id = model_id or new_id("model")
    if not _MODEL_ID.match(model_id):
        raise Invalid("model_id takes letters, digits, '.', '_' and '-' (at most 128)", param="model_id")
    source = Path(source_dir).resolve()
    if not (source / "model_index.json").is_file():
        raise Invalid(f"{source} is not a diffusers pipeline folder (no model_index.json)", param="source_dir")
    root = trained_models_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    with _registry_lock(root):
        registry = root / TRAINED_REGISTRY_FILE
        models = _read_models(registry)
        if model_id in models:
            raise Conflict(f"a trained model {model_id!r} is already registered", param="model_id")
        location = str(source)
        if move:
            target = root / model_id
            if target.exists():
                raise Conflict(f"{target} already exists", param="model_id")
            shutil.move(str(source), target)
            location = model_id  # relative to the registry's folder
        entry: dict[str, Any] = {
            "family": family,
            "source": location,
            "dtype": "auto",
            "description": description,
            "owner_id": owner_id,
            "created": int(time.time()),
        }
        if base_id is not None:
            entry["base_id"] = base_id
        if defaults is not None:
            entry["defaults"] = {k: v for k, v in dataclasses.asdict(defaults).items() if v is not None}
        models[model_id] = entry
        _write_registry(registry, models)
    return model_id


def _read_models(registry: Path) -> dict[str, Any]:
    if not registry.is_file():
        return {}
    with registry.open("rb") as handle:
        models: dict[str, Any] = tomllib.load(handle).get("models", {})
    return models


def _write_registry(registry: Path, models: dict[str, Any]) -> None:
    import tomli_w

    text = "# Trained models (full fine-tunes), each visible to its owner only. Written by genfoundry.\n\n"
    text += tomli_w.dumps({"models": models})
    tmp = registry.with_name(f".tmp-{registry.name}-{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(registry)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # the rename is durable once the directory entry is flushed
        fd = os.open(registry.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _registry_lock(root: Path) -> Iterator[None]:
    """An exclusive lock between processes (flock) around read-modify-write of the registry."""
    with (root / _LOCK_FILE).open("a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: writers are not serialized, but each write stays atomic
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
