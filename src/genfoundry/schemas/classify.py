"""Prompt classification and routing: /v1/classify and /v1/route."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ClassifyRequest(BaseModel):
    """`input`: one text or a list (encoded in one batch); `model`: the default router or a custom classifier."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"input": ["draw a red fox in the snow", "what is a sequence diagram?"]}]},
    )

    input: str | list[str]
    model: str | None = Field(default=None, min_length=1, max_length=120)

    @field_validator("input", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise ValueError("input must list at least one text")
        for index, text in enumerate(texts):
            where = f"input[{index}]" if isinstance(value, list) else "input"
            if not isinstance(text, str):
                raise ValueError(f"{where} must be a string, got {type(text).__name__ if text is not None else 'null'}")
            if not text.strip():
                raise ValueError(f"{where} is empty or only whitespace")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class ClassificationPublic(BaseModel):
    index: int
    label: str
    scores: dict[str, float]  # per label, summing to 1
    ambiguous: bool  # the top-two margin is under the ambiguity threshold
    margin: float


class ClassifyResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[ClassificationPublic]


class RouteContentPart(BaseModel):
    """An OpenAI content part; only `text` parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=40)
    text: str | None = None


class RouteMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1, max_length=40)
    content: str | list[RouteContentPart] | None = None


class RouteRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"messages": [{"role": "user", "content": "a logo for my bakery"}]}]},
    )

    messages: list[RouteMessage] = Field(min_length=1)
    model: str | None = Field(default=None, min_length=1, max_length=120)


class RoutePublic(BaseModel):
    """Which capability answers the last user message, and why."""

    object: Literal["route"] = "route"
    model: str
    route: str  # image | diagram | chat for the default router; a custom classifier's label otherwise
    label: str
    scores: dict[str, float]
    ambiguous: bool
    margin: float
    message_index: int
