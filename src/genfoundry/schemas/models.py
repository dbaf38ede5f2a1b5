"""Models: bases, adapters, classifiers and trained models in /v1/models' shape."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ModelPublic(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    kind: Literal["base", "adapter", "classifier"]
    family: str
    base: str | None = None
    trigger_word: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    rank: int | None = None
    source_format: str | None = None
    labels: list[str] | None = None  # classifiers: the labels they predict
