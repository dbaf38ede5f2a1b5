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
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.catalog import FAMILIES, TRAINED_REGISTRY_FILE, GenerationDefaults, trained_models_dir
from genfoundry.errors import Conflict, Invalid, NotFound
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import new_id

if TYPE_CHECKING:
    from genfoundry.inference.image import ImageEngine

_LOCK_FILE = ".registry.lock"
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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


def delete_trained_model(
    *, sessions: sessionmaker[Session], engine: ImageEngine, models_dir: Path, owner_id: str, model_id: str
) -> None:
    """Delete `owner_id`'s trained model: its registry entry, its loaded pipeline and its folder. Refused (409)
    while adapters of the owner are trained on it or a job of the owner is queued or running on it."""
    with sessions() as session:
        adapters = [
            a.id for a in adapters_repo.list_adapters(session=session, owner_id=owner_id) if a.base_id == model_id
        ]
        jobs = [
            j.id
            for j in jobs_repo.active_jobs(session=session, owner_id=owner_id)
            if j.params.get("base_id") == model_id
        ]
    if adapters:
        raise Conflict(
            f"{len(adapters)} adapter(s) are trained on {model_id} ({', '.join(adapters[:5])}); delete them first",
            param="model",
        )
    if jobs:
        raise Conflict(
            f"job(s) {', '.join(jobs[:5])} train on {model_id}; cancel them or let them finish", param="model"
        )
    folder = unregister_trained_model(models_dir=models_dir, owner_id=owner_id, model_id=model_id)
    engine.unload_base(model_id)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def unregister_trained_model(*, models_dir: Path, owner_id: str, model_id: str) -> Path | None:
    """Remove `owner_id`'s model from the registry and return its folder when the registry owned it (moved under
    `<models_dir>/trained` at registration), for the caller to delete; None for a folder registered where it was.
    An unknown id or another user's model is NotFound."""
    root = trained_models_dir(models_dir)
    if not root.is_dir():
        raise NotFound(f"The model '{model_id}' does not exist", param="model")
    with _registry_lock(root):
        registry = root / TRAINED_REGISTRY_FILE
        models = _read_models(registry)
        entry = models.get(model_id)
        if entry is None or entry.get("owner_id") != owner_id:
            raise NotFound(f"The model '{model_id}' does not exist", param="model")
        del models[model_id]
        _write_registry(registry, models)
    source = Path(str(entry["source"]))
    return None if source.is_absolute() else root / source


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
