"""Shapes every resource shares: lists, deletions, errors, and the one seed type."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

SEED_MAX = 2**32 - 1
# One range for every seed the API takes (images, text, diagrams, fine-tuning): what torch and diffusers
# reproduce on every device, and what a BigInteger column keeps.
Seed = Annotated[int, Field(ge=0, le=SEED_MAX, description="0 to 2**32-1; the same seed gives the same output")]


class ListPublic(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool = False


class DeletedPublic(BaseModel):
    id: str
    object: str
    deleted: bool = True


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
