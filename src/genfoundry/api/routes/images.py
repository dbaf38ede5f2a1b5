"""OpenAI-compatible image generation and edits, and the image files themselves."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from genfoundry.api.admission import ImagePlaceDep
from genfoundry.api.deps import OptionalPrincipalDep, PrincipalDep, ServicesDep
from genfoundry.api.sse import sse_block
from genfoundry.datasets.image_checks import open_checked_image, open_checked_mask
from genfoundry.errors import GenfoundryError, Invalid, TooLarge, Unauthorized
from genfoundry.inference.model_pool import QueuePlace
from genfoundry.presenters.images import image_stream_event, images_response
from genfoundry.schemas import ImageGenerationRequest, ImageOptions, ListPublic, StylePublic
from genfoundry.schemas.common import FINITE
from genfoundry.services import Services
from genfoundry.services.images import PartialImage, PlannedRequest, RecordedImage

router = APIRouter(prefix="/v1/images", tags=["images"])


_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
logger = logging.getLogger(__name__)


async def _generate(
    services: Services,
    request: Request,
    owner_id: str,
    options: ImageOptions,
    place: QueuePlace,
    init_image: Any = None,
    strength: float | None = None,
    mask: Any = None,
) -> Response:
    """The images as OpenAI's JSON answer, or with `stream` its Server-Sent Events."""
    if options.stream:
        planned, items = await services.images.open_stream(
            owner_id=owner_id, options=options, place=place, init_image=init_image, strength=strength, mask=mask
        )
        return StreamingResponse(_sse_events(items, planned), media_type="text/event-stream", headers=_SSE_HEADERS)
    recorded = await services.images.generate(
        owner_id=owner_id, options=options, place=place, init_image=init_image, strength=strength, mask=mask
    )
    answer = images_response(
        recorded, response_format=options.response_format, signer=services.signer, base_url=str(request.base_url)
    )
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True))


async def _sse_events(
    items: AsyncIterator[PartialImage | RecordedImage], planned: PlannedRequest
) -> AsyncIterator[bytes]:
    """Each preview and the final image as OpenAI's named events; a failure after the stream began is one
    `error` event (the status line has already gone out)."""
    try:
        async for item in items:
            event = image_stream_event(item, planned)
            yield sse_block(data=event.model_dump_json(exclude_none=True), event=event.type)
    except GenfoundryError as exc:
        error = {"message": exc.message, "type": exc.error_type, "param": exc.param, "code": exc.code}
        yield sse_block(data=json.dumps({"type": "error", "error": error}), event="error")
    except Exception:
        logger.exception("an image stream failed")
        error = {"message": "internal server error", "type": "server_error", "param": None, "code": "internal_error"}
        yield sse_block(data=json.dumps({"type": "error", "error": error}), event="error")


@router.post("/generations", response_model=None)
async def create_image(
    body: ImageGenerationRequest, request: Request, services: ServicesDep, place: ImagePlaceDep, principal: PrincipalDep
) -> Response:
    """Text to image. `model` is a base model or an adapter id; `loras`, `style`, `industry` are ours.

    `stream: true` answers `text/event-stream`: `partial_images` (0–3) `image_generation.partial_image` events,
    then `image_generation.completed`."""
    return await _generate(services, request, principal.user_id, body, place)


async def _read_upload(upload: UploadFile, limit: int, param: str) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{param} upload is too large", param=param)
    return data


@router.post("/edits", response_model=None)
async def edit_image(
    request: Request,
    services: ServicesDep,
    place: ImagePlaceDep,
    principal: PrincipalDep,
    prompt: Annotated[str, Form()],
    model: Annotated[str, Form()],
    image: Annotated[list[UploadFile] | None, File(description="PNG, JPEG or WebP to start from")] = None,
    image_list: Annotated[
        list[UploadFile] | None, File(alias="image[]", description="OpenAI's list form of `image`")
    ] = None,
    mask: Annotated[
        UploadFile | None, File(description="PNG the size of `image`: its fully transparent pixels are repainted")
    ] = None,
    strength: Annotated[float | None, Form(gt=0.0, le=1.0), FINITE] = None,
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
    quality: Annotated[str | None, Form()] = None,
    output_format: Annotated[str | None, Form()] = None,
    output_compression: Annotated[int | None, Form()] = None,
    background: Annotated[str | None, Form()] = None,
    moderation: Annotated[str | None, Form()] = None,
    stream: Annotated[bool, Form()] = False,
    partial_images: Annotated[int | None, Form()] = None,
) -> Response:
    """Image to image (OpenAI's edits endpoint, multipart): the image is the starting point (`strength`, default
    0.6); with `mask`, inpainting: only the mask's transparent area is repainted (`strength` default 1.0)."""
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
        "quality": quality,
        "output_format": output_format,
        "output_compression": output_compression,
        "background": background,
        "moderation": moderation,
        "stream": stream,
        "partial_images": partial_images,
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
    uploads = [*(image or []), *(image_list or [])]
    if not uploads:
        raise Invalid("image is required: the picture to edit", param="image")
    if len(uploads) > 1:
        raise Invalid(
            f"{len(uploads)} input images: the bases here (SD 1.5, SDXL, FLUX) edit one image; send one",
            param="image",
        )
    limits = services.settings.limits
    data = await _read_upload(uploads[0], limits.max_body_bytes, "image")
    init_image = await run_in_threadpool(open_checked_image, data, max_pixels=limits.max_upload_pixels)
    mask_image = None
    if mask is not None:
        mask_data = await _read_upload(mask, limits.max_body_bytes, "mask")
        mask_image = await run_in_threadpool(open_checked_mask, mask_data, max_pixels=limits.max_upload_pixels)
        if mask_image.size != init_image.size:
            raise Invalid(
                f"mask is {mask_image.width}x{mask_image.height}, image is {init_image.width}x{init_image.height}; "
                "they must be the same size",
                param="mask",
            )
    elif strength is None:
        strength = 0.6
    return await _generate(services, request, principal.user_id, options, place, init_image, strength, mask_image)


@router.get("/styles")
def read_styles(services: ServicesDep, principal: PrincipalDep) -> ListPublic[StylePublic]:
    """The styles a request may name in `style` (declared before `/{image_id}`, which would take the path)."""
    styles = sorted(services.catalog.styles.values(), key=lambda style: style.name)
    return ListPublic(data=[StylePublic(id=s.name, prompt=s.prompt, negative_prompt=s.negative_prompt) for s in styles])


@router.get(
    "/{image_id}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
)
def read_image(
    image_id: str,
    services: ServicesDep,
    principal: OptionalPrincipalDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """The image of a generation (PNG, JPEG or WebP, as it was asked for): for its owner's key, or anyone holding
    an unexpired signed URL."""
    signed = expires is not None and signature is not None and services.signer.verify(image_id, expires, signature)
    if not signed and principal is None:
        raise Unauthorized("missing API key or valid signature")
    owner_id = None if signed or principal is None else principal.user_id
    content, media_type = services.images.image_file(image_id, owner_id=owner_id)
    return Response(content, media_type=media_type)
