"""Conversations and their items, scoped to an owner: another user's conversation does not exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from genfoundry.db.tables import Conversation, ConversationItem, utcnow
from genfoundry.errors import NotFound
from genfoundry.repo.ids import new_id


def create_conversation(*, session: Session, owner_id: str, title: str, meta: dict[str, str]) -> Conversation:
    conversation = Conversation(id=new_id("conv"), owner_id=owner_id, title=title, meta=meta, item_count=0)
    session.add(conversation)
    session.flush()
    return conversation


def require_conversation(*, session: Session, owner_id: str, conversation_id: str) -> Conversation:
    conversation = session.scalar(select(Conversation).where(Conversation.id == conversation_id))
    if conversation is None or conversation.owner_id != owner_id:
        raise NotFound(f"No conversation with id '{conversation_id}'", param="conversation_id")
    return conversation


def list_conversations(
    *, session: Session, owner_id: str, limit: int, after: str | None = None
) -> tuple[list[Conversation], bool]:
    """Newest first; `after` is the id of the last conversation of the previous page. Returns (page, has_more)."""
    query = select(Conversation).where(Conversation.owner_id == owner_id)
    if after is not None:
        cursor = require_conversation(session=session, owner_id=owner_id, conversation_id=after)
        query = query.where(Conversation.seq < cursor.seq)
    rows = list(session.scalars(query.order_by(Conversation.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def add_items(*, session: Session, conversation: Conversation, items: list[dict[str, Any]]) -> list[ConversationItem]:
    rows = [ConversationItem(id=new_id("msg"), conversation_id=conversation.id, **fields) for fields in items]
    session.add_all(rows)
    conversation.item_count += len(rows)
    conversation.updated_at = utcnow()
    session.flush()
    return rows


def list_items(
    *, session: Session, conversation: Conversation, limit: int, after: str | None, newest_first: bool
) -> tuple[list[ConversationItem], bool]:
    """A page of the conversation's items in `order`; `after` is the id of the last item of the previous page."""
    query = select(ConversationItem).where(ConversationItem.conversation_id == conversation.id)
    if after is not None:
        cursor = session.scalar(
            select(ConversationItem).where(
                ConversationItem.id == after, ConversationItem.conversation_id == conversation.id
            )
        )
        if cursor is None:
            raise NotFound(f"No item with id '{after}' in this conversation", param="after")
        query = query.where(ConversationItem.seq < cursor.seq if newest_first else ConversationItem.seq > cursor.seq)
    order = ConversationItem.seq.desc() if newest_first else ConversationItem.seq.asc()
    rows = list(session.scalars(query.order_by(order).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def require_item(*, session: Session, conversation: Conversation, item_id: str) -> ConversationItem:
    item = session.scalar(
        select(ConversationItem).where(
            ConversationItem.id == item_id, ConversationItem.conversation_id == conversation.id
        )
    )
    if item is None:
        raise NotFound(f"No item with id '{item_id}' in this conversation", param="item_id")
    return item


def delete_conversation(*, session: Session, conversation: Conversation) -> None:
    # The items' foreign key cascades too; deleting them here does not depend on the backend enforcing it.
    session.execute(delete(ConversationItem).where(ConversationItem.conversation_id == conversation.id))
    session.delete(conversation)
