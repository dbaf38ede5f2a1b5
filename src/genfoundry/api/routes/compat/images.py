"""What the compat routers share: the PNG answer the seed systems give (images are made by
`ImageService.generate`, as on /v1, so they are in the history)."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from genfoundry.services.images import RecordedImage

PNG_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "The PNG; its generation id in `X-Generation-Id`"}
}


def png_response(image: RecordedImage) -> Response:
    """The image itself, with the ids that find it again in /v1/generations and the studio's gallery."""
    headers = {"X-Generation-Id": image.row.id, "X-Seed": str(image.row.seed)}
    return Response(image.content, media_type=image.media_type, headers=headers)
