"""Images: text→image and image→image requests and answers, and the generation history."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genfoundry.schemas.common import Seed


class LoraRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=120)
    weight: float = Field(default=1.0, ge=-4.0, le=4.0)

    @field_validator("weight")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("weight must be a finite number")
        return value


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
    guidance_scale: float | None = Field(default=None, ge=0.0, le=100.0)
    seed: Seed | None = None
    loras: list[LoraRef] = Field(default_factory=list)
    style: str | None = None
    industry: str | None = Field(default=None, max_length=100)
    user: str | None = None

    @field_validator("guidance_scale")
    @classmethod
    def _finite_guidance(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("guidance_scale must be a finite number")
        return value


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
    # OpenAI fields we accept and ignore because they have no meaning for diffusion models.
    quality: str | None = None
    output_format: Literal["png"] | None = None


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


class GenerationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    favorite: bool | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    feedback: str | None = Field(default=None, max_length=4000)

    @field_validator("favorite")
    @classmethod
    def _favorite_not_null(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("favorite must be true or false")
        return value
