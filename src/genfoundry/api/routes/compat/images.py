"""What the compat routers share: one image through ImageService (planned, run, recorded in the history) and the
PNG answer the seed systems give."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from genfoundry.inference.model_pool import QueuePlace
from genfoundry.schemas import ImageOptions
from genfoundry.services import Services
from genfoundry.services.images import RecordedImage

if TYPE_CHECKING:
    from PIL import Image

PNG_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "The PNG; its generation id in `X-Generation-Id`"}
}


async def generate_one(
    services: Services,
    *,
    owner_id: str,
    options: ImageOptions,
    place: QueuePlace,
    init_image: Image.Image | None = None,
) -> RecordedImage:
    """One image, exactly as `/v1/images/generations` (or `/edits` with `init_image`) makes and records it."""
    planned = await run_in_threadpool(services.images.plan, owner_id=owner_id, options=options, init_image=init_image)
    results = await services.images.run(planned, place)
    recorded = await run_in_threadpool(services.images.record, planned, results)
    return recorded[0]


def png_response(image: RecordedImage) -> Response:
    """The image itself, with the ids that find it again in /v1/generations and the studio's gallery."""
    headers = {"X-Generation-Id": image.row.id, "X-Seed": str(image.row.seed)}
    return Response(image.png, media_type="image/png", headers=headers)
