"""Promoting a checkpoint: its adapter is copied to a new adapter of the owner's, under a name they chose, so it
outlives the run's checkpoints and shows among their models like any trained result."""

from __future__ import annotations

import re
import secrets

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import Adapter
from genfoundry.errors import Invalid, NotFound
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo.ids import slug
from genfoundry.services.text_adapters import (
    PEFT_CONFIG_FILE,
    PEFT_WEIGHTS_FILE,
    TEXT_FAMILY,
    text_adapter_prefix,
)
from genfoundry.storage import ArtifactStore
from genfoundry.text.formats import TEXT_FORMAT_FILE

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def checked_line(value: str | None, *, param: str, max_length: int) -> str | None:
    """A single line of text, trimmed; None when empty; Invalid naming `param` for a line break or control."""
    if value is None:
        return None
    text = value.strip()
    if _CONTROL.search(text):
        raise Invalid(f"{param} must be a single line without control characters", param=param)
    if len(text) > max_length:
        raise Invalid(f"{param} must be at most {max_length} characters", param=param)
    return text or None


def copy_adapter(
    *,
    sessions: sessionmaker[Session],
    store: ArtifactStore,
    source: Adapter,
    name: str,
    trigger_word: str | None,
    tags: dict[str, str],
) -> Adapter:
    """A new adapter of `source`'s owner with `source`'s weights (an image LoRA file or a text PEFT folder)."""
    adapter_id = f"{slug(name)}-{secrets.token_hex(4)}"
    folder = source.file_key.rsplit("/", 1)[0]
    filename = source.file_key.rsplit("/", 1)[1]
    files = (PEFT_WEIGHTS_FILE, PEFT_CONFIG_FILE, TEXT_FORMAT_FILE) if source.family == TEXT_FAMILY else (filename,)
    target = text_adapter_prefix(adapter_id)  # image adapters live under the same adapters/<id>/ folder
    for each in files:
        if not store.exists(f"{folder}/{each}"):
            raise NotFound(f"the checkpoint's adapter {source.id} has no {each} any more")
        store.put_bytes(f"{target}/{each}", store.get_bytes(f"{folder}/{each}"))
    with sessions() as session:
        adapter = adapters_repo.create_adapter(
            session=session,
            id=adapter_id,
            owner_id=source.owner_id,
            name=name,
            base_id=source.base_id,
            family=source.family,
            trigger_word=trigger_word,
            tags=tags,
            file_key=f"{target}/{filename}",
            source_format=source.source_format,
            rank=source.rank,
            alpha=source.alpha,
            size_bytes=source.size_bytes,
        )
        session.commit()
    return adapter
