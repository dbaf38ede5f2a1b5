"""Embeddings: /v1/embeddings (OpenAI shapes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# OpenAI's own cap on inputs per request; a larger list is a 400 naming `input`.
MAX_EMBEDDING_INPUTS = 2048


def _where(index: int | None) -> str:
    return "input" if index is None else f"input[{index}]"


def _check_one(value: Any, index: int | None) -> None:
    """A string with some text in it, or a non-empty list of integer token ids."""
    where = _where(index)
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where} is empty or only whitespace")
        return
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{where} is an empty token array")
        if not all(isinstance(token, int) and not isinstance(token, bool) for token in value):
            raise ValueError(f"{where} must be a string or an array of integer token ids")
        return
    kind = "null" if value is None else type(value).__name__
    raise ValueError(f"{where} must be a string or an array of integer token ids, got {kind}")


class EmbeddingRequest(BaseModel):
    """`input`: a string, a list of strings, a token array or a list of token arrays (ids in the model's
    vocabulary, without special tokens: the model's tokenizer with `add_special_tokens=False`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"model": "all-MiniLM-L6-v2", "input": ["a red fox in the snow", "a sequence diagram"]}]
        },
    )

    model: str = Field(min_length=1, max_length=120)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=256)

    @field_validator("input", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(item, int) for item in value):
            _check_one(value, None)  # one token array
            return value
        if not isinstance(value, list):
            _check_one(value, None)
            return value
        if not value:
            raise ValueError("input must list at least one string or token array")
        if len(value) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"input lists {len(value)} items; at most {MAX_EMBEDDING_INPUTS} per request")
        for index, item in enumerate(value):
            _check_one(item, index)
        if len({type(item) for item in value}) > 1:
            raise ValueError("input must be all strings or all token arrays, not a mix")
        return value

    def texts(self) -> list[str]:
        """The string inputs as a list (empty when the inputs are token arrays)."""
        value = self.input
        if isinstance(value, str):
            return [value]
        return [item for item in value if isinstance(item, str)]

    def token_arrays(self) -> list[list[int]]:
        """The token-array inputs as a list (empty when the inputs are strings)."""
        value = self.input
        if isinstance(value, str):
            return []
        if all(isinstance(item, int) for item in value):
            return [[item for item in value if isinstance(item, int)]]
        return [item for item in value if isinstance(item, list)]


class EmbeddingPublic(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # a base64 string of little-endian float32 with encoding_format "base64"


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingPublic]
    model: str
    usage: EmbeddingUsage
