"""Images: text→image and image→image requests and answers, and the generation history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from genfoundry.schemas.common import FINITE, Seed

# `standard` and `hd` are dall-e's names, accepted as OpenAI's schema does.
ImageQuality = Literal["low", "medium", "high", "auto", "standard", "hd"]
OutputFormat = Literal["png", "jpeg", "webp"]


class LoraRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=120)
    weight: Annotated[float, Field(ge=-4.0, le=4.0), FINITE] = 1.0


class ImageOptions(BaseModel):
    """Fields shared by generations and edits; limits beyond these are checked against settings."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    model: str = Field(min_length=1, max_length=120)
    n: int = Field(default=1, ge=1)
    size: str | None = Field(default=None, examples=["64x64", "1024x1024"])
    response_format: Literal["url", "b64_json"] = "url"
    negative_prompt: str | None = None
    steps: int | None = Field(default=None, ge=1)
    guidance_scale: Annotated[float, Field(ge=0.0, le=100.0), FINITE] | None = None
    seed: Seed | None = None
    loras: list[LoraRef] = Field(default_factory=list)
    style: str | None = None
    industry: str | None = Field(default=None, max_length=100)
    user: str | None = None
    # OpenAI's image fields (docs/images.md says what each does here).
    quality: ImageQuality | None = None
    output_format: OutputFormat | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    background: Literal["transparent", "opaque", "auto"] | None = None
    moderation: Literal["auto", "low"] | None = None
    stream: bool = False
    partial_images: int | None = Field(default=None, ge=0, le=3)


class ImageGenerationRequest(ImageOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "tiny-sd15",
                    "prompt": "a red fox in the snow",
                    "size": "64x64",
                    "n": 1,
                    "seed": 7,
                    "style": "cinematic",
                    "response_format": "url",
                }
            ]
        },
    )


class ImagePublic(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str
    id: str
    seed: int
    generation_time_s: float


class ImagesResponse(BaseModel):
    created: int
    data: list[ImagePublic]
    output_format: OutputFormat | None = None
    background: Literal["opaque"] | None = None
    quality: Literal["low", "medium", "high"] | None = None


class ImageStreamEvent(BaseModel):
    """One SSE event of a streamed generation or edit (`image_generation.*` / `image_edit.*`), as OpenAI's."""

    type: str
    b64_json: str
    created_at: int
    size: str
    quality: Literal["low", "medium", "high", "auto"]
    background: Literal["opaque", "auto"]
    output_format: OutputFormat
    partial_image_index: int | None = None
    usage: dict[str, Any] | None = None
    # ours, on the completed event: the history row's id and the image's seed
    id: str | None = None
    seed: int | None = None


class GenerationPublic(BaseModel):
    id: str
    object: Literal["generation"] = "generation"
    created: int
    kind: str
    model: str
    base: str
    prompt: str
    revised_prompt: str
    negative_prompt: str | None
    params: dict[str, Any]
    seed: int
    width: int
    height: int
    url: str
    generation_time_s: float
    favorite: bool
    rating: int | None
    feedback: str | None


class StylePublic(BaseModel):
    """A named style: `prompt` wraps the user's prompt (`{prompt}`), `negative_prompt` is appended."""

    id: str
    object: Literal["style"] = "style"
    prompt: str
    negative_prompt: str


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class GenerationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # May be left out (unchanged) but not null: the schema says boolean, the validator refuses an explicit null.
    favorite: bool | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_without_default)
    rating: int | None = Field(default=None, ge=1, le=5)
    feedback: str | None = Field(default=None, max_length=4000)

    @field_validator("favorite")
    @classmethod
    def _favorite_not_null(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("favorite must be true or false")
        return value
