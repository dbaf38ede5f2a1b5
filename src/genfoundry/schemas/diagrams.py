"""Diagrams: PlantUML checked and drawn (/v1/diagrams/render), and generated from words (/v1/diagrams).

Responses keep to their JSON schema: a field declared without a default is always present, as null where its type
allows (`id` when no try was valid, an error's `line` when PlantUML named none), since generated clients read
required fields unconditionally; a field with a default (`url` or `b64_json`, `diagram_type`) is left out when it
does not apply. So the routes do not use `response_model_exclude_none`, which would drop required nulls too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from genfoundry.schemas.common import Seed


class DiagramRenderRequest(BaseModel):
    """`POST /v1/diagrams/render`: PlantUML source to check with PlantUML and draw."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"plantuml": "@startuml\nAlice -> Bob: hello\n@enduml", "format": "png"}],
        },
    )

    # Its length and line count are capped by diagrams.max_source_chars / max_source_lines (413 above).
    plantuml: str = Field(min_length=1)
    format: Literal["png", "svg"] = "png"
    response_format: Literal["url", "b64_json"] = "url"


def _left_out(value: object) -> bool:
    """For fields with a default: None leaves the field out of the response (`Field(exclude_if=...)`)."""
    return value is None


class DiagramErrorPublic(BaseModel):
    line: int | None  # counting from 1 in the caller's source; None when PlantUML gave none
    message: str


class DiagramRenderPublic(BaseModel):
    id: str
    object: Literal["diagram.render"] = "diagram.render"
    created: int
    valid: bool
    # PlantUML's own name: sequence, class, description, activity, mindmap...
    diagram_type: str | None = Field(default=None, exclude_if=_left_out)
    errors: list[DiagramErrorPublic] = Field(default_factory=list)
    format: Literal["png", "svg"]
    width: int
    height: int
    # Signed, expiring; the owner's key also opens it without the signature.
    url: str | None = Field(default=None, exclude_if=_left_out)
    b64_json: str | None = Field(default=None, exclude_if=_left_out)
    render_time_s: float


class DiagramGenerateRequest(BaseModel):
    """`POST /v1/diagrams`: a scenario in words; a text model writes PlantUML, checked and retried, then drawn."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prompt": "A sequence diagram of a user logging in", "format": "png"}]},
    )

    prompt: str = Field(min_length=1, max_length=20_000)
    model: str | None = Field(default=None, max_length=120)  # a text base or adapter; default: assistant settings
    format: Literal["png", "svg"] = "png"
    max_attempts: int | None = Field(default=None, ge=1)  # capped by assistant.max_diagram_attempts
    seed: Seed | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    response_format: Literal["url", "b64_json"] = "url"


class DiagramAttemptPublic(BaseModel):
    seed: int
    temperature: float
    valid: bool
    errors: list[DiagramErrorPublic]


class DiagramGeneratePublic(BaseModel):
    id: str | None  # the rendered diagram's id; None when no attempt was valid
    object: Literal["diagram"] = "diagram"
    created: int
    model: str
    plantuml: str  # the valid attempt's, else the last one's
    valid: bool
    attempts: int
    errors: list[DiagramErrorPublic]  # the last attempt's (empty when valid)
    tries: list[DiagramAttemptPublic]
    diagram_type: str | None = Field(default=None, exclude_if=_left_out)
    format: Literal["png", "svg"]
    url: str | None = Field(default=None, exclude_if=_left_out)
    b64_json: str | None = Field(default=None, exclude_if=_left_out)
