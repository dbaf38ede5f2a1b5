"""API keys."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    admin: bool = False
    user_id: str | None = Field(default=None, max_length=40)


class ApiKeyPublic(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    user_id: str
    admin: bool
    created: int
    last_used: int | None
    revoked: int | None


class ApiKeyCreated(ApiKeyPublic):
    key: str
