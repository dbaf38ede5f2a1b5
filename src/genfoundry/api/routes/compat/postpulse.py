"""Seed 002's API (PostPulse) under `/compat/postpulse`: a marketing image from a prompt, an industry and a style,
optionally starting from an image at a URL (fetched through the dataset URLs' SSRF guard)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from genfoundry.api.admission import ImagePlaceDep
from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.config import DatasetSettings
from genfoundry.datasets.image_checks import open_checked_image
from genfoundry.datasets.url_fetch import MAX_URL_LENGTH, FetchPolicy, fetch_image
from genfoundry.errors import GenfoundryError, Invalid
from genfoundry.schemas import ImageOptions

router = APIRouter(prefix="/compat/postpulse", tags=["compat: postpulse"])


class PostPulseRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prompt": "Professional product photo of a smartphone against a dark gradient background",
                    "industry": "technology",
                    "style": "professional",
                }
            ]
        },
    )

    prompt: str = Field(min_length=1)
    base_image_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    industry: str | None = Field(default=None, max_length=100)
    style: str | None = Field(default=None, max_length=100)


class PostPulseImage(BaseModel):
    generated_image_url: str  # signed, valid for an hour; with the owner's key the path works without it
    generation_time: str  # seconds, as "3.2s"
    id: str  # the generation's id in /v1/generations


def fetch_policy(settings: DatasetSettings) -> FetchPolicy:
    """The same policy as dataset URL downloads (services/dataset_jobs.py)."""
    return FetchPolicy(
        allowed_networks=tuple(settings.allowed_fetch_networks),
        total_timeout_s=settings.fetch_timeout_s,
        max_bytes=settings.fetch_max_bytes,
    )


@router.post("/generate-image")
async def generate_postpulse_image(
    body: PostPulseRequest, request: Request, services: ServicesDep, place: ImagePlaceDep, principal: PrincipalDep
) -> PostPulseImage:
    """Text to image on `compat.postpulse_model`; with `base_image_url`, image to image from that picture.
    `industry` applies the caller's adapter tagged `industry=<value>` for the base when there is one."""
    init_image = None
    if body.base_image_url is not None:
        fetched = await fetch_image(body.base_image_url, policy=fetch_policy(services.settings.datasets))
        if not fetched.ok or fetched.data is None:
            raise Invalid(f"base_image_url could not be used: {fetched.reason}", param="base_image_url")
        init_image = await run_in_threadpool(
            open_checked_image,
            fetched.data,
            max_pixels=services.settings.limits.max_upload_pixels,
            param="base_image_url",
        )
    fields = {"prompt": body.prompt, "model": services.settings.compat.postpulse_model, "style": body.style}
    options = ImageOptions.model_validate({**fields, "industry": body.industry})
    try:
        [image] = await services.images.generate(
            owner_id=principal.user_id, options=options, place=place, init_image=init_image
        )
    except GenfoundryError as exc:
        # PostPulse served every industry; without an adapter tagged for it, the base alone answers. Planning
        # refuses the industry before anything runs, so the place is still ours for the second request.
        if not body.industry or exc.param != "industry":
            raise
        [image] = await services.images.generate(
            owner_id=principal.user_id, options=ImageOptions.model_validate(fields), place=place, init_image=init_image
        )
    return PostPulseImage(
        generated_image_url=services.signer.image_url(str(request.base_url), image.row.id),
        generation_time=f"{image.row.generation_time_s:.1f}s",
        id=image.row.id,
    )
