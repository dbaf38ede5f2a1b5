"""Registered adapters (LoRAs). Every read is scoped to an owner: another user's adapter does not exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genfoundry.db.tables import Adapter
from genfoundry.errors import NotFound


def create_adapter(*, session: Session, **fields: Any) -> Adapter:
    adapter = Adapter(**fields)
    session.add(adapter)
    session.flush()
    return adapter


def get_adapter(*, session: Session, owner_id: str, adapter_id: str) -> Adapter | None:
    adapter = session.get(Adapter, adapter_id)
    if adapter is None or adapter.owner_id != owner_id:
        return None
    return adapter


def require_adapter(*, session: Session, owner_id: str, adapter_id: str, param: str = "model") -> Adapter:
    adapter = get_adapter(session=session, owner_id=owner_id, adapter_id=adapter_id)
    if adapter is None:
        raise NotFound(f"The model '{adapter_id}' does not exist", param=param)
    return adapter


def list_adapters(*, session: Session, owner_id: str) -> list[Adapter]:
    query = select(Adapter).where(Adapter.owner_id == owner_id).order_by(Adapter.created_at)
    return list(session.scalars(query))


def list_all_adapters(*, session: Session) -> list[Adapter]:
    """Every user's adapters: for the operator's CLI only, never for an API caller."""
    return list(session.scalars(select(Adapter).order_by(Adapter.created_at)))


def find_adapters_by_tag(*, session: Session, owner_id: str, base_id: str, key: str, value: str) -> list[Adapter]:
    wanted = value.strip().lower()
    return [
        adapter
        for adapter in list_adapters(session=session, owner_id=owner_id)
        if adapter.base_id == base_id and str(adapter.tags.get(key, "")).lower() == wanted
    ]


def delete_adapter(*, session: Session, adapter: Adapter) -> None:
    session.delete(adapter)
