"""Models: bases, adapters, classifiers and trained models in /v1/models' shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

TAG_KEY_PATTERN = r"^[a-z][a-z0-9_\-]{0,39}$"

# What a model can be asked for, by endpoint: chat (/v1/chat/completions), completions (/v1/completions), images
# (/v1/images/generations and /edits), classify (/v1/classify), embeddings (/v1/embeddings).
Capability = Literal["chat", "completions", "images", "classify", "embeddings"]


class ModelPublic(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    kind: Literal["base", "adapter", "classifier", "auto"]  # auto: the prompt router answering chat completions
    family: str
    capabilities: list[Capability] = Field(default_factory=list)  # ours: what the model can be asked for
    base: str | None = None
    name: str | None = None  # adapters and classifiers: the name their owner gave them
    trigger_word: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    rank: int | None = None
    source_format: str | None = None
    labels: list[str] | None = None  # classifiers: the labels they predict
    # Bases and trained models: whether the weights are on this machine, and if not, the command that fetches them.
    weights_present: bool | None = None
    fetch_command: str | None = None
    # Whether the model can be used now: false for a base whose weights are not here (an adapter: its base's).
    available: bool = True
    size_gb: float | None = None  # bases: the weights it loads, where the catalog knows it
    # Adapters and trained models: a signed URL of the newest image generated with this model; None before any.
    preview_url: str | None = None


NAME_MAX = 200
TAGS_MAX = 20


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _name_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    schema.update(minLength=1, maxLength=NAME_MAX)


def _tags_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    schema.update(maxProperties=TAGS_MAX)


class ModelUpdate(BaseModel):
    """Rename an adapter, or change its trigger word or tags; fields left out are unchanged."""

    model_config = ConfigDict(extra="forbid")

    # May be left out (unchanged) but not null: an adapter always has a name, and tags are an object ({} for none).
    name: str | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_name_schema)
    trigger_word: str | None = Field(default=None, max_length=200, description="null or empty: no trigger word")
    tags: dict[str, str] | SkipJsonSchema[None] = Field(
        default=None,
        description='replaces all tags, e.g. {"industry": "technology", "style": "flat"}',
        json_schema_extra=_tags_schema,
    )

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str | None) -> str:
        name = (value or "").strip()
        if not name:
            raise ValueError("name must not be empty")
        if len(name) > NAME_MAX:
            raise ValueError(f"name takes at most {NAME_MAX} characters")
        return name

    @field_validator("tags")
    @classmethod
    def _tags_an_object(cls, value: dict[str, str] | None) -> dict[str, str]:
        if value is None:
            raise ValueError("tags must be an object of strings ({} for none)")
        if len(value) > TAGS_MAX:
            raise ValueError(f"at most {TAGS_MAX} tags")
        return value
