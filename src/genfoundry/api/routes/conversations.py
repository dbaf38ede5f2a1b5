"""A user's chat conversations, kept on the server (after OpenAI's Conversations API): create, list, read,
rename (POST), delete, and their message items with what each assistant answer made."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.presenters.conversations import conversation_public, item_public
from genfoundry.schemas import DeletedPublic, ListPublic
from genfoundry.schemas.conversations import (
    ConversationCreate,
    ConversationItemPublic,
    ConversationItemsCreate,
    ConversationPublic,
    ConversationUpdate,
)
from genfoundry.services.conversations import ConversationService

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

IdParam = Annotated[str, Path(description="an id of yours; any other is a 404")]


async def get_conversations(services: ServicesDep) -> ConversationService:
    return services.conversations


ConversationsDep = Annotated[ConversationService, Depends(get_conversations)]


@router.post("")
def create_conversation(
    body: ConversationCreate, conversations: ConversationsDep, principal: PrincipalDep
) -> ConversationPublic:
    """A new conversation, optionally with a `title`, `metadata` and its first `items`."""
    row, _items = conversations.create(owner_id=principal.user_id, body=body)
    return conversation_public(row)


@router.get("")
def read_conversations(
    conversations: ConversationsDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListPublic[ConversationPublic]:
    """Your conversations, newest first; pass the last id of a page as `after` for the next."""
    rows, has_more = conversations.list_conversations(owner_id=principal.user_id, limit=limit, after=after)
    return ListPublic(data=[conversation_public(row) for row in rows], has_more=has_more)


@router.get("/{conversation_id}")
def read_conversation(
    conversation_id: IdParam, conversations: ConversationsDep, principal: PrincipalDep
) -> ConversationPublic:
    return conversation_public(conversations.get(owner_id=principal.user_id, conversation_id=conversation_id))


@router.post("/{conversation_id}")
def update_conversation(
    conversation_id: IdParam, body: ConversationUpdate, conversations: ConversationsDep, principal: PrincipalDep
) -> ConversationPublic:
    """Rename (`title`) or replace `metadata`; fields left out are unchanged."""
    row = conversations.update(owner_id=principal.user_id, conversation_id=conversation_id, body=body)
    return conversation_public(row)


@router.delete("/{conversation_id}")
def delete_conversation(
    conversation_id: IdParam, conversations: ConversationsDep, principal: PrincipalDep
) -> DeletedPublic:
    """The conversation and all its items."""
    conversations.delete(owner_id=principal.user_id, conversation_id=conversation_id)
    return DeletedPublic(id=conversation_id, object="conversation")


@router.get("/{conversation_id}/items")
def read_conversation_items(
    conversation_id: IdParam,
    request: Request,
    services: ServicesDep,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
) -> ListPublic[ConversationItemPublic]:
    """The conversation's messages, newest first unless `order=asc`; attachment URLs are signed afresh."""
    rows, has_more = conversations.list_items(
        owner_id=principal.user_id,
        conversation_id=conversation_id,
        limit=limit,
        after=after,
        newest_first=order == "desc",
    )
    base_url = str(request.base_url)
    data = [item_public(row, signer=services.signer, base_url=base_url) for row in rows]
    return ListPublic(data=data, has_more=has_more)


@router.post("/{conversation_id}/items")
def create_conversation_items(
    conversation_id: IdParam,
    body: ConversationItemsCreate,
    request: Request,
    services: ServicesDep,
    conversations: ConversationsDep,
    principal: PrincipalDep,
) -> ListPublic[ConversationItemPublic]:
    """Appends messages (all or none). An attachment must be your own image or diagram."""
    rows = conversations.add_items(owner_id=principal.user_id, conversation_id=conversation_id, items=body.items)
    base_url = str(request.base_url)
    return ListPublic(data=[item_public(row, signer=services.signer, base_url=base_url) for row in rows])


@router.get("/{conversation_id}/items/{item_id}")
def read_conversation_item(
    conversation_id: IdParam,
    item_id: IdParam,
    request: Request,
    services: ServicesDep,
    conversations: ConversationsDep,
    principal: PrincipalDep,
) -> ConversationItemPublic:
    row = conversations.get_item(owner_id=principal.user_id, conversation_id=conversation_id, item_id=item_id)
    return item_public(row, signer=services.signer, base_url=str(request.base_url))
