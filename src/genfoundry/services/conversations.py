"""Conversations kept for their owner: create, list, rename, delete, and append messages with what an assistant
answer made. An attachment must name the caller's own image or diagram: its URL is signed afresh on every read,
so naming someone else's would hand out a way to see it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import Conversation, ConversationItem
from genfoundry.errors import Invalid, NotFound
from genfoundry.repo import conversations as conversations_repo
from genfoundry.repo import generations as generations_repo
from genfoundry.schemas.conversations import ConversationCreate, ConversationItemCreate, ConversationUpdate
from genfoundry.services.diagrams import DiagramService

MAX_ITEMS_PER_CONVERSATION = 1000


class ConversationService:
    def __init__(self, *, sessions: sessionmaker[Session], diagrams: DiagramService) -> None:
        self.sessions = sessions
        self.diagrams = diagrams

    def create(self, *, owner_id: str, body: ConversationCreate) -> tuple[Conversation, list[ConversationItem]]:
        with self.sessions() as session:
            fields = [self._item_fields(session, owner_id, item, f"items.{i}") for i, item in enumerate(body.items)]
            conversation = conversations_repo.create_conversation(
                session=session, owner_id=owner_id, title=body.title.strip(), meta=body.metadata or {}
            )
            rows = conversations_repo.add_items(session=session, conversation=conversation, items=fields)
            session.commit()
            return conversation, rows

    def list_conversations(self, *, owner_id: str, limit: int, after: str | None) -> tuple[list[Conversation], bool]:
        with self.sessions() as session:
            return conversations_repo.list_conversations(session=session, owner_id=owner_id, limit=limit, after=after)

    def get(self, *, owner_id: str, conversation_id: str) -> Conversation:
        with self.sessions() as session:
            return conversations_repo.require_conversation(
                session=session, owner_id=owner_id, conversation_id=conversation_id
            )

    def update(self, *, owner_id: str, conversation_id: str, body: ConversationUpdate) -> Conversation:
        with self.sessions() as session:
            conversation = conversations_repo.require_conversation(
                session=session, owner_id=owner_id, conversation_id=conversation_id
            )
            if "title" in body.model_fields_set and body.title is not None:
                conversation.title = body.title.strip()
            if "metadata" in body.model_fields_set:
                conversation.meta = body.metadata or {}
            session.commit()
            return conversation

    def delete(self, *, owner_id: str, conversation_id: str) -> None:
        with self.sessions() as session:
            conversation = conversations_repo.require_conversation(
                session=session, owner_id=owner_id, conversation_id=conversation_id
            )
            conversations_repo.delete_conversation(session=session, conversation=conversation)
            session.commit()

    def add_items(
        self, *, owner_id: str, conversation_id: str, items: list[ConversationItemCreate]
    ) -> list[ConversationItem]:
        """All or nothing: one bad item (someone else's image, too many items) and none is added."""
        with self.sessions() as session:
            conversation = conversations_repo.require_conversation(
                session=session, owner_id=owner_id, conversation_id=conversation_id
            )
            if conversation.item_count + len(items) > MAX_ITEMS_PER_CONVERSATION:
                raise Invalid(
                    f"a conversation holds at most {MAX_ITEMS_PER_CONVERSATION} items: start a new one", param="items"
                )
            fields = [self._item_fields(session, owner_id, item, f"items.{i}") for i, item in enumerate(items)]
            rows = conversations_repo.add_items(session=session, conversation=conversation, items=fields)
            session.commit()
            return rows

    def list_items(
        self, *, owner_id: str, conversation_id: str, limit: int, after: str | None, newest_first: bool
    ) -> tuple[list[ConversationItem], bool]:
        with self.sessions() as session:
            conversation = conversations_repo.require_conversation(
                session=session, owner_id=owner_id, conversation_id=conversation_id
            )
            return conversations_repo.list_items(
                session=session, conversation=conversation, limit=limit, after=after, newest_first=newest_first
            )

    def get_item(self, *, owner_id: str, conversation_id: str, item_id: str) -> ConversationItem:
        with self.sessions() as session:
            conversation = conversations_repo.require_conversation(
                session=session, owner_id=owner_id, conversation_id=conversation_id
            )
            return conversations_repo.require_item(session=session, conversation=conversation, item_id=item_id)

    def _item_fields(self, session: Session, owner_id: str, item: ConversationItemCreate, param: str) -> dict[str, Any]:
        if item.role == "user" and (item.route is not None or item.attachments):
            raise Invalid("only an assistant message carries a route or attachments", param=param)
        attachments: list[dict[str, str | None]] = []
        for index, attachment in enumerate(item.attachments):
            where = f"{param}.attachments.{index}.id"
            if attachment.type == "image":
                generation = generations_repo.get_generation(session=session, generation_id=attachment.id)
                if generation is None or generation.owner_id != owner_id:
                    raise Invalid(f"No image with id '{attachment.id}'", param=where)
                attachments.append({"type": "image", "id": attachment.id})
            else:
                try:
                    self.diagrams.content(diagram_id=attachment.id, owner_id=owner_id)
                except NotFound as exc:
                    raise Invalid(f"No diagram with id '{attachment.id}'", param=where) from exc
                attachments.append({"type": "diagram", "id": attachment.id, "plantuml": attachment.plantuml})
        return {
            "role": item.role,
            "content": item.content,
            "model": item.model,
            "route": item.route.model_dump() if item.route is not None else None,
            "attachments": attachments,
        }
