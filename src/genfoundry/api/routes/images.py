"""OpenAI-compatible image generation and edits, and the image files themselves."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from genfoundry.api.admission import ImagePlaceDep
from genfoundry.api.deps import OptionalPrincipalDep, PrincipalDep, ServicesDep
from genfoundry.datasets.image_checks import open_checked_image
from genfoundry.errors import Invalid, TooLarge, Unauthorized
from genfoundry.inference.model_pool import QueuePlace
from genfoundry.presenters.images import images_response
from genfoundry.schemas import ImageGenerationRequest, ImageOptions, ImagesResponse, ListPublic, StylePublic
from genfoundry.schemas.common import FINITE
from genfoundry.services import Services

router = APIRouter(prefix="/v1/images", tags=["images"])


async def _generate(
    services: Services,
    request: Request,
    owner_id: str,
    options: ImageOptions,
    place: QueuePlace,
    init_image: Any = None,
    strength: float | None = None,
) -> ImagesResponse:
    recorded = await services.images.generate(
        owner_id=owner_id, options=options, place=place, init_image=init_image, strength=strength
    )
    return images_response(
        recorded, response_format=options.response_format, signer=services.signer, base_url=str(request.base_url)
    )


@router.post("/generations", response_model_exclude_none=True)
async def create_image(
    body: ImageGenerationRequest, request: Request, services: ServicesDep, place: ImagePlaceDep, principal: PrincipalDep
) -> ImagesResponse:
    """Text to image. `model` is a base model or an adapter id; `loras`, `style`, `industry` are ours."""
    return await _generate(services, request, principal.user_id, body, place)


@router.post("/edits", response_model_exclude_none=True)
async def edit_image(
    request: Request,
    services: ServicesDep,
    place: ImagePlaceDep,
    principal: PrincipalDep,
    image: Annotated[UploadFile, File(description="PNG, JPEG or WebP to start from")],
    prompt: Annotated[str, Form()],
    model: Annotated[str, Form()],
    strength: Annotated[float, Form(gt=0.0, le=1.0), FINITE] = 0.6,
    n: Annotated[int, Form()] = 1,
    size: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "url",
    negative_prompt: Annotated[str | None, Form()] = None,
    steps: Annotated[int | None, Form()] = None,
    guidance_scale: Annotated[float | None, Form()] = None,
    seed: Annotated[int | None, Form()] = None,
    loras: Annotated[str | None, Form(description='JSON list: [{"id": "...", "weight": 0.8}]')] = None,
    style: Annotated[str | None, Form()] = None,
    industry: Annotated[str | None, Form()] = None,
) -> ImagesResponse:
    """Image to image (OpenAI's edits endpoint, multipart): the image is the starting point."""
    fields: dict[str, Any] = {
        "prompt": prompt,
        "model": model,
        "n": n,
        "size": size,
        "response_format": response_format,
        "negative_prompt": negative_prompt,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "seed": seed,
        "style": style,
        "industry": industry,
    }
    if loras:
        try:
            fields["loras"] = json.loads(loras)
        except json.JSONDecodeError as exc:
            raise Invalid("loras must be a JSON list of {id, weight}", param="loras") from exc
    try:
        options = ImageOptions.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise Invalid(f"{param}: {first['msg']}", param=param) from exc
    limits = services.settings.limits
    data = await image.read(limits.max_body_bytes + 1)
    if len(data) > limits.max_body_bytes:
        raise TooLarge("image upload is too large", param="image")
    init_image = await run_in_threadpool(open_checked_image, data, max_pixels=limits.max_upload_pixels)
    return await _generate(services, request, principal.user_id, options, place, init_image, strength)


@router.get("/styles")
def read_styles(services: ServicesDep, principal: PrincipalDep) -> ListPublic[StylePublic]:
    """The styles a request may name in `style` (declared before `/{image_id}`, which would take the path)."""
    styles = sorted(services.catalog.styles.values(), key=lambda style: style.name)
    return ListPublic(data=[StylePublic(id=s.name, prompt=s.prompt, negative_prompt=s.negative_prompt) for s in styles])


@router.get("/{image_id}", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def read_image(
    image_id: str,
    services: ServicesDep,
    principal: OptionalPrincipalDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """The PNG of a generation: for its owner's key, or anyone holding an unexpired signed URL."""
    signed = expires is not None and signature is not None and services.signer.verify(image_id, expires, signature)
    if not signed and principal is None:
        raise Unauthorized("missing API key or valid signature")
    owner_id = None if signed or principal is None else principal.user_id
    return Response(services.images.image_file(image_id, owner_id=owner_id), media_type="image/png")
