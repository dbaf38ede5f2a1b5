"""Conversations (`/v1/conversations`, after OpenAI's Conversations API): a user's chats kept on the server, each
a list of message items with what an assistant answer made (the route it took, an image, a diagram)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from genfoundry.schemas.common import FINITE

MAX_TITLE_CHARS = 200
MAX_CONTENT_CHARS = 32_000
MAX_PLANTUML_CHARS = 20_000
MAX_ITEMS_PER_REQUEST = 20
MAX_ATTACHMENTS = 4
MAX_METADATA_KEYS = 16


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text and no database stores a lone surrogate (JSON's "\ud800" decodes to
    # one); no person types either: refuse them on every backend alike, before anything is written.
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL characters or lone surrogates")
    return value


Title = Annotated[str, Field(max_length=MAX_TITLE_CHARS), AfterValidator(_no_nul)]
Metadata = dict[
    Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)],
    Annotated[str, Field(max_length=512), AfterValidator(_no_nul)],
]


def _few_keys(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is not None and len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata takes at most {MAX_METADATA_KEYS} keys, got {len(value)}")
    return value


class ItemRoute(BaseModel):
    """Who answered an assistant message under `model: "auto"`: the route, the router's confidence in it, and
    whether the router was unsure (`ambiguous`) — or `forced` when the caller chose the route."""

    model_config = ConfigDict(extra="forbid")

    route: Literal["image", "diagram", "chat"]
    confidence: Annotated[float, Field(ge=0.0, le=1.0), FINITE]
    ambiguous: bool = False
    forced: bool = False


class ItemAttachment(BaseModel):
    """An image (a generation's id) or a diagram (a rendered diagram's id and its PlantUML) the answer made.
    Both must be the caller's own; `url` is accepted and ignored: a fresh signed URL is made on every read."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["image", "diagram"]
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    plantuml: Annotated[str, Field(max_length=MAX_PLANTUML_CHARS), AfterValidator(_no_nul)] | None = None
    url: str | None = Field(default=None, max_length=4096)


class ConversationItemCreate(BaseModel):
    """One message to add: the user's words or an assistant's answer (with its model, route and attachments)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["message"] = "message"
    role: Literal["user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_CONTENT_CHARS), AfterValidator(_no_nul)]
    model: str | None = Field(default=None, min_length=1, max_length=120)
    route: ItemRoute | None = None
    attachments: list[ItemAttachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class ConversationItemsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ConversationItemCreate] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)


class ConversationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"title": "Login flow", "items": [{"role": "user", "content": "a sequence diagram of a login"}]}
            ]
        },
    )

    title: Title = ""
    metadata: Annotated[Metadata | None, AfterValidator(_few_keys)] = None
    items: list[ConversationItemCreate] = Field(default_factory=list, max_length=MAX_ITEMS_PER_REQUEST)


class ConversationUpdate(BaseModel):
    """Fields left out are unchanged."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    metadata: Annotated[Metadata | None, AfterValidator(_few_keys)] = None

    @field_validator("title")
    @classmethod
    def _title_not_null(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("title must be a string (an empty one clears it)")
        return value


class ConversationPublic(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    updated_at: int
    title: str
    metadata: dict[str, str]
    item_count: int


class AttachmentPublic(BaseModel):
    type: Literal["image", "diagram"]
    id: str
    url: str  # signed and expiring, made on this read
    plantuml: str | None = None


class ItemRoutePublic(BaseModel):
    route: Literal["image", "diagram", "chat"]
    confidence: float
    ambiguous: bool
    forced: bool


class ConversationItemPublic(BaseModel):
    id: str
    object: Literal["conversation.item"] = "conversation.item"
    type: Literal["message"] = "message"
    role: Literal["user", "assistant"]
    content: str
    model: str | None = None
    route: ItemRoutePublic | None = None
    attachments: list[AttachmentPublic] = Field(default_factory=list)
    created_at: int
