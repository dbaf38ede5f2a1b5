"""Text adapters: a PEFT LoRA folder plus its prompt format, stored under `adapters/<id>/` and registered."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import Adapter
from genfoundry.errors import Invalid
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo.ids import slug
from genfoundry.storage import ArtifactStore
from genfoundry.text.formats import TEXT_FORMAT_FILE, TextFormat

TEXT_FAMILY = "text"
PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"


def text_adapter_prefix(adapter_id: str) -> str:
    """The store folder of a text adapter: PEFT's two files and genfoundry_text.json."""
    return f"adapters/{adapter_id}"


def read_peft_config(peft_dir: Path) -> dict[str, object]:
    """PEFT's adapter_config.json of a LoRA folder; Invalid unless it is a LoRA with its weights next to it."""
    config_path = Path(peft_dir) / PEFT_CONFIG_FILE
    if not config_path.is_file() or not (Path(peft_dir) / PEFT_WEIGHTS_FILE).is_file():
        raise Invalid(f"{peft_dir} is not a PEFT adapter folder ({PEFT_CONFIG_FILE} + {PEFT_WEIGHTS_FILE})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise Invalid(f"{PEFT_CONFIG_FILE} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise Invalid(f"{PEFT_CONFIG_FILE} does not describe a LoRA adapter")
    rank = config.get("r")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise Invalid(f"{PEFT_CONFIG_FILE} has no valid rank 'r'")
    return config


def register_text_adapter(
    *,
    sessions: sessionmaker[Session],
    store: ArtifactStore,
    owner_id: str,
    base_id: str,
    name: str,
    peft_dir: Path,
    text_format: TextFormat,
    tags: dict[str, str],
) -> Adapter:
    """Copy a PEFT LoRA folder and its prompt format into the store and add its `Adapter` row (family "text").

    `peft_dir` is left as it was. The row is written last, so an adapter id never names a half-stored folder.
    """
    if text_format.base_id != base_id:
        raise Invalid(f"the adapter's prompt format names base {text_format.base_id!r}, not {base_id!r}")
    config = read_peft_config(peft_dir)
    adapter_id = f"{slug(name)}-{secrets.token_hex(4)}"
    prefix = text_adapter_prefix(adapter_id)
    weights_key = f"{prefix}/{PEFT_WEIGHTS_FILE}"
    size = 0
    try:
        with tempfile.TemporaryDirectory(dir=peft_dir, prefix=".register-") as tmp:
            staged = Path(tmp)
            shutil.copyfile(Path(peft_dir) / PEFT_WEIGHTS_FILE, staged / PEFT_WEIGHTS_FILE)
            shutil.copyfile(Path(peft_dir) / PEFT_CONFIG_FILE, staged / PEFT_CONFIG_FILE)
            text_format.write(staged)
            # The format file goes last: a folder with it is complete.
            for filename in (PEFT_WEIGHTS_FILE, PEFT_CONFIG_FILE, TEXT_FORMAT_FILE):
                size += (staged / filename).stat().st_size
                store.put_file(f"{prefix}/{filename}", staged / filename)
        alpha = config.get("lora_alpha")
        with sessions() as session:
            adapter = adapters_repo.create_adapter(
                session=session,
                id=adapter_id,
                owner_id=owner_id,
                name=name,
                base_id=base_id,
                family=TEXT_FAMILY,
                trigger_word=None,
                tags=dict(tags),
                file_key=weights_key,
                source_format="peft",
                rank=int(str(config["r"])),
                alpha=float(alpha) if isinstance(alpha, int | float) else None,
                size_bytes=size,
            )
            session.commit()
    except BaseException:
        store.delete(prefix)
        raise
    return adapter
