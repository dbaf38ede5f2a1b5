"""Text generation: /v1/chat/completions and /v1/completions (OpenAI shapes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from genfoundry.schemas.classify import RoutePublic
from genfoundry.schemas.common import FINITE, Seed
from genfoundry.schemas.tools import MAX_TOOLS, ToolCall, ToolCallDelta, ToolChoice, ToolDefinition


class ChatContentPart(BaseModel):
    """A content part; only text parts are served (image or audio parts are refused)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    # Before `content`, whose check reads them (fields are validated in order).
    tool_calls: list[ToolCall] | None = Field(default=None, max_length=MAX_TOOLS)  # an assistant's calls
    tool_call_id: str | None = Field(default=None, min_length=1, max_length=200, validate_default=True)
    content: str | list[ChatContentPart] | None = Field(default=None, validate_default=True)
    name: str | None = Field(default=None, max_length=64)

    @field_validator("tool_calls")
    @classmethod
    def _assistant_calls(cls, value: list[ToolCall] | None, info: ValidationInfo) -> list[ToolCall] | None:
        if value and info.data.get("role") != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        return value

    @field_validator("tool_call_id")
    @classmethod
    def _tool_answers_a_call(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("role") == "tool") != (value is not None):
            raise ValueError("a tool message needs tool_call_id (the call it answers); other messages have none")
        return value

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and not (info.data.get("role") == "assistant" and info.data.get("tool_calls")):
            raise ValueError("content is required (null only on an assistant message with tool_calls)")
        if isinstance(value, list):
            for index, part in enumerate(value):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise ValueError(f"content[{index}]: only text parts ({{'type': 'text', 'text': ...}}) are served")
        return value

    def text(self) -> str:
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


def _check_stop(value: str | list[str] | None) -> str | list[str] | None:
    if isinstance(value, list) and len(value) > 4:
        raise ValueError(f"stop takes at most 4 sequences, got {len(value)}")
    if any(len(stop) > 256 for stop in ([value] if isinstance(value, str) else value or [])):
        raise ValueError("each stop sequence may be at most 256 characters")
    return value


class TextSamplingOptions(BaseModel):
    """Fields chat completions and completions share. Fields OpenAI has and we do not serve are refused with
    400 when set to anything but their neutral value (see services/text.py), never silently ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=120)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: Annotated[float, Field(ge=0.0, le=2.0), FINITE] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0), FINITE] | None = None
    n: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: Seed | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0), FINITE] | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0), FINITE] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = Field(default=None, max_length=256)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        return _check_stop(value)

    def stop_sequences(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in stops if s)


class ChatCompletionRequest(TextSamplingOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "tiny-llm",
                    "messages": [{"role": "user", "content": "A sequence diagram of a login"}],
                    "max_tokens": 64,
                    "temperature": 0,
                }
            ]
        },
    )

    messages: list[ChatMessage] = Field(min_length=1)
    # Ours, with model="auto" only: answer with this route instead of asking the router (a person's "answer as
    # an image instead"); the answer's `route` then has `model: "request"`, score 1 and no ambiguity.
    route: Literal["image", "diagram", "chat"] | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    # Functions the model may call (bases whose chat template can call tools; others answer in text).
    tools: list[ToolDefinition] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # Accepted for compatibility and refused unless neutral: structured output and logprobs.
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    # Accepted and ignored: they do not change the completion.
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None

    @field_validator("tool_choice", mode="wrap")
    @classmethod
    def _tool_choice(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One message for a bad tool_choice, not one per shape it could have had."""
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(
                'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}'
            ) from None


class Attachment(BaseModel):
    """What a `model="auto"` answer made besides text: an image or a diagram, with a signed URL."""

    type: Literal["image", "diagram"]
    id: str
    url: str
    plantuml: str | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None  # OpenAI requires it (null: the model did not refuse); nothing here refuses
    attachments: list[Attachment] | None = None  # ours: set by model="auto" when it made an image or a diagram
    tool_calls: list[ToolCall] | None = None

    @model_serializer(mode="wrap")
    def _calls_only_when_made(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """OpenAI's `tool_calls` is an array when present, never null: left out when the model made no call."""
        data: dict[str, Any] = handler(self)
        if data.get("tool_calls", ()) is None:
            del data["tool_calls"]
        return data


class ChatCompletionChoice(BaseModel):
    index: int
    message: ChatCompletionMessage
    finish_reason: Literal["stop", "length", "tool_calls"]
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage
    route: RoutePublic | None = None  # ours: set when model="auto" (the router's decision, as /v1/route gives it)


class ChatCompletionDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    attachments: list[Attachment] | None = None  # ours: model="auto" answers with an image or a diagram
    tool_calls: list[ToolCallDelta] | None = None


class ChatCompletionChunkChoice(BaseModel):
    index: int
    delta: ChatCompletionDelta
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None
    logprobs: None = None

    @model_serializer(mode="wrap")
    def _finish_reason_always(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """OpenAI requires `finish_reason` in every chunk, null until the last: kept when chunks drop their nulls."""
        data: dict[str, Any] = handler(self)
        data.setdefault("finish_reason", self.finish_reason)
        return data


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionChunkChoice]
    usage: CompletionUsage | None = None
    route: RoutePublic | None = None  # ours: on the first chunk when model="auto"


class CompletionRequest(TextSamplingOptions):
    """OpenAI's legacy completions: `prompt` is passed to the model verbatim (no chat or plain template)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "tiny-llm", "prompt": "@startuml\n", "max_tokens": 32}]},
    )

    prompt: str | list[str]
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = None
    best_of: int | None = None

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("prompt must list at least one string")
        return value

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"] | None
    logprobs: None = None


class CompletionResponse(BaseModel):
    """A completion, or (object "text_completion" too, as OpenAI sends it) one chunk of a streamed one."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
