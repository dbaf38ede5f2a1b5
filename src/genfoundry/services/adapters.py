"""Adapters (LoRAs): import from an upload in any common key format, export, delete."""

from __future__ import annotations

import re
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.catalog import Catalog
from genfoundry.db.tables import Adapter
from genfoundry.errors import GenfoundryError, Invalid, NotFound
from genfoundry.inference.image import ImageEngine
from genfoundry.models.lora_formats import export_lora, import_lora
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo.ids import slug
from genfoundry.services.datasets import copy_upload
from genfoundry.storage import ArtifactStore


class Unset:
    """A field left out of an update (where None means "clear it")."""


UNSET = Unset()
_TAG_KEY = re.compile(r"^[a-z][a-z0-9_\-]{0,39}$")
EXPORT_FORMATS = ("diffusers", "kohya")


def parse_tags(raw: str | None) -> dict[str, str]:
    """`industry=technology,style=flat` → {"industry": "technology", "style": "flat"}."""
    tags: dict[str, str] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not _TAG_KEY.match(key) or not value or len(value) > 100:
            raise Invalid(f"tags must look like 'industry=technology,style=flat', got {part!r}", param="tags")
        tags[key] = value
    return tags


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags given as an object: the same keys and values `parse_tags` accepts, keys lower-cased, values trimmed."""
    checked: dict[str, str] = {}
    for raw_key, raw_value in tags.items():
        key, value = raw_key.strip().lower(), raw_value.strip()
        if not _TAG_KEY.match(key):
            raise Invalid(
                f"a tag's name takes lower-case letters, digits, '_' and '-' (at most 40), got {raw_key!r}",
                param="tags",
            )
        if not value or len(value) > 100:
            raise Invalid(f"the tag {key!r} needs a value of 1 to 100 characters", param="tags")
        checked[key] = value
    return checked


class AdapterService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ArtifactStore,
        catalog: Catalog,
        engine: ImageEngine | None,  # None in a job's process: nothing is loaded there to unload
        work_dir: Path,
    ) -> None:
        self.work_dir = work_dir
        self.sessions = sessions
        self.store = store
        self.catalog = catalog
        self.engine = engine

    def import_upload(
        self,
        *,
        owner_id: str,
        upload: Path,
        base_id: str,
        name: str,
        trigger_word: str | None,
        tags: dict[str, str],
    ) -> Adapter:
        """Validate the LoRA against the base, normalize it to diffusers format, store and register it."""
        base = self.catalog.get_visible(base_id, owner_id)  # a public base, or one of the owner's trained models
        adapter_id = f"{slug(name)}-{secrets.token_hex(4)}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            normalized = Path(tmp) / "adapter.safetensors"
            try:
                info = import_lora(upload, family=base.family, base_source=base.source, dest=normalized)
            except GenfoundryError as exc:
                exc.param = exc.param or "file"
                raise
            size = normalized.stat().st_size
            key = f"adapters/{adapter_id}/adapter.safetensors"
            self.store.put_file(key, normalized)
        with self.sessions() as session:
            adapter = adapters_repo.create_adapter(
                session=session,
                id=adapter_id,
                owner_id=owner_id,
                name=name,
                base_id=base.id,
                family=base.family,
                trigger_word=trigger_word or None,
                tags=tags,
                file_key=key,
                source_format=info.source_format,
                rank=info.rank,
                alpha=info.alpha,
                size_bytes=size,
            )
            session.commit()
        return adapter

    def import_file(
        self,
        *,
        owner_id: str,
        source: BinaryIO,
        limit: int,
        base_id: str,
        name: str,
        trigger_word: str | None,
        tags: dict[str, str],
    ) -> Adapter:
        """An uploaded LoRA file of at most `limit` bytes for a catalog base: copied aside, then `import_upload`."""
        if base_id not in self.catalog.models:
            raise NotFound(f"The base model '{base_id}' does not exist", param="base")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            upload = Path(tmp) / "upload.safetensors"
            copy_upload(source, upload, limit=limit, param="file")
            return self.import_upload(
                owner_id=owner_id, upload=upload, base_id=base_id, name=name, trigger_word=trigger_word, tags=tags
            )

    def export_owned(self, *, owner_id: str, adapter_id: str, fmt: str) -> bytes:
        """`owner_id`'s adapter's weights in `fmt`; a base model's id is a 400 (only adapters are downloadable)."""
        with self.sessions() as session:
            adapter = adapters_repo.get_adapter(session=session, owner_id=owner_id, adapter_id=adapter_id)
        if adapter is None:
            if adapter_id in self.catalog.models:
                raise Invalid("only adapters can be downloaded; base weights come from their source", param="model")
            raise NotFound(f"The model '{adapter_id}' does not exist")
        return self.export(adapter, fmt=fmt)

    def export(self, adapter: Adapter, *, fmt: str) -> bytes:
        if fmt not in EXPORT_FORMATS:
            raise Invalid(f"format must be one of {', '.join(EXPORT_FORMATS)}", param="format")
        return export_lora(self.store.local_path(adapter.file_key), fmt=fmt, family=adapter.family)

    def update(
        self,
        *,
        owner_id: str,
        adapter_id: str,
        name: str | None = None,
        trigger_word: str | Unset | None = UNSET,
        tags: dict[str, str] | None = None,
    ) -> Adapter:
        """Rename `owner_id`'s adapter or change its trigger word (None or blank: none) or tags (replaced whole)."""
        checked = check_tags(tags) if tags is not None else None
        with self.sessions() as session:
            adapter = adapters_repo.require_adapter(session=session, owner_id=owner_id, adapter_id=adapter_id)
            if name is not None:
                adapter.name = name
            if not isinstance(trigger_word, Unset):
                adapter.trigger_word = (trigger_word or "").strip() or None
            if checked is not None:
                adapter.tags = checked
            session.commit()
            return adapter

    def delete(self, *, owner_id: str, adapter_id: str) -> None:
        with self.sessions() as session:
            adapter = adapters_repo.require_adapter(session=session, owner_id=owner_id, adapter_id=adapter_id)
            key = adapter.file_key
            adapters_repo.delete_adapter(session=session, adapter=adapter)
            session.commit()
        if self.engine is not None:
            self.engine.unload_adapter(adapter_id)
        self.store.delete(key.rsplit("/", 1)[0])
