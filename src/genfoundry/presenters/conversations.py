"""Conversations and their items as the API answers them; attachment URLs are signed afresh on each read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genfoundry.db.tables import Conversation, ConversationItem
from genfoundry.presenters.diagrams import diagram_content_path
from genfoundry.schemas.conversations import (
    AttachmentPublic,
    ConversationItemPublic,
    ConversationPublic,
    ItemRoutePublic,
)

if TYPE_CHECKING:
    from genfoundry.services.urls import UrlSigner


def conversation_public(row: Conversation) -> ConversationPublic:
    return ConversationPublic(
        id=row.id,
        created_at=int(row.created_at.timestamp()),
        updated_at=int(row.updated_at.timestamp()),
        title=row.title,
        metadata=dict(row.meta or {}),
        item_count=row.item_count,
    )


def _attachment_public(stored: dict[str, Any], *, signer: UrlSigner, base_url: str) -> AttachmentPublic:
    if stored["type"] == "image":
        return AttachmentPublic(type="image", id=stored["id"], url=signer.image_url(base_url, stored["id"]))
    url = signer.path_url(base_url, diagram_content_path(stored["id"]))
    return AttachmentPublic(type="diagram", id=stored["id"], url=url, plantuml=stored.get("plantuml"))


def item_public(row: ConversationItem, *, signer: UrlSigner, base_url: str) -> ConversationItemPublic:
    return ConversationItemPublic(
        id=row.id,
        role="assistant" if row.role == "assistant" else "user",
        content=row.content,
        model=row.model,
        route=ItemRoutePublic.model_validate(row.route) if row.route else None,
        attachments=[_attachment_public(a, signer=signer, base_url=base_url) for a in row.attachments or []],
        created_at=int(row.created_at.timestamp()),
    )
