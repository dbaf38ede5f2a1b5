"""Tools on chat completions (OpenAI shapes): function definitions, `tool_choice`, and tool calls in messages,
answers and stream deltas."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TOOLS = 128  # OpenAI's cap on `tools` per request
FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_SCHEMA_DEPTH = 32
_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")


def check_json_schema(schema: object, where: str, depth: int = 0) -> None:
    """Raise ValueError unless `schema` is a JSON Schema whose keywords have the types the specification gives
    them (a boolean or an object; `type` one of the seven type names; subschemas schemas; `required` strings)."""
    if isinstance(schema, bool):
        return
    if depth > MAX_SCHEMA_DEPTH:
        raise ValueError(f"{where} nests schemas more than {MAX_SCHEMA_DEPTH} deep")
    if not isinstance(schema, Mapping):
        raise ValueError(f"{where} must be a JSON Schema object, got {type(schema).__name__}")
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if (not kinds and kind is not None) or any(not isinstance(k, str) or k not in _JSON_TYPES for k in kinds):
        raise ValueError(f"{where}.type must be one of {', '.join(sorted(_JSON_TYPES))} (or a list of them)")
    required = schema.get("required")
    if required is not None and (not isinstance(required, list) or not all(isinstance(r, str) for r in required)):
        raise ValueError(f"{where}.required must be an array of property names")
    for key in _SUBSCHEMA_MAPS:
        if key in schema:
            children = schema[key]
            if not isinstance(children, Mapping):
                raise ValueError(f"{where}.{key} must be an object of schemas")
            for name, child in children.items():
                check_json_schema(child, f"{where}.{key}.{name}", depth + 1)
    for key in _SUBSCHEMA_LISTS:
        if key in schema:
            children = schema[key]
            if not isinstance(children, list) or not children:
                raise ValueError(f"{where}.{key} must be a non-empty array of schemas")
            for index, child in enumerate(children):
                check_json_schema(child, f"{where}.{key}[{index}]", depth + 1)
    for key in _SUBSCHEMAS:
        if key in schema:
            check_json_schema(schema[key], f"{where}.{key}", depth + 1)


def check_parameters_schema(schema: object) -> None:
    """A function's `parameters`: a JSON Schema (see `check_json_schema`) describing an object."""
    check_json_schema(schema, "parameters")
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise ValueError('parameters must be a JSON Schema of type "object" (the arguments are an object)')


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = Field(default=None, max_length=8192)
    parameters: dict[str, Any] | None = None  # a JSON Schema of the arguments object; None: no arguments
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _json_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_parameters_schema(value)
        return value


class ToolDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionDefinition

    def for_template(self) -> dict[str, Any]:
        """The tool as transformers' `apply_chat_template(tools=...)` takes it (OpenAI's shape, no nulls)."""
        function = self.function.model_dump(exclude_none=True)
        function.setdefault("parameters", {"type": "object", "properties": {}})
        return {"type": "function", "function": function}


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)


class NamedToolChoice(BaseModel):
    """`{"type": "function", "function": {"name": ...}}`: the model must call this tool."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: NamedFunction


class ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    arguments: str  # a JSON object, as a string

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise ValueError("arguments must be a JSON object encoded as a string") from None
        if not isinstance(parsed, dict):
            raise ValueError("arguments must be a JSON object encoded as a string")
        return value


class ToolCall(BaseModel):
    """A call the assistant made: in an answer's `message.tool_calls`, and in the assistant messages sent back."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    type: Literal["function"] = "function"
    function: ToolCallFunction

    def for_template(self) -> dict[str, Any]:
        """As chat templates read a call: `arguments` an object (templates write it with `tojson`)."""
        arguments = json.loads(self.function.arguments)
        return {"id": self.id, "type": "function", "function": {"name": self.function.name, "arguments": arguments}}


class ToolCallDeltaFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    """One call in a stream: sent whole, in one delta (its `index` among the choice's calls)."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ToolCallDeltaFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice
