"""Generated images: the answer to /v1/images/generations and /v1/images/edits, and the history's rows. Image URLs
are signed by the caller's `signer` against the request's `base_url`, so they open in a browser without a key."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from genfoundry.db.tables import Generation
from genfoundry.schemas import GenerationPublic, ImagePublic, ImagesResponse

if TYPE_CHECKING:
    from genfoundry.services.images import RecordedImage
    from genfoundry.services.urls import UrlSigner


def images_response(
    recorded: Sequence[RecordedImage], *, response_format: str, signer: UrlSigner, base_url: str
) -> ImagesResponse:
    """Each image as base64 (`response_format="b64_json"`) or as a signed URL."""
    data = []
    for image in recorded:
        row = image.row
        item = ImagePublic(
            revised_prompt=row.revised_prompt, id=row.id, seed=row.seed, generation_time_s=row.generation_time_s
        )
        if response_format == "b64_json":
            item.b64_json = base64.b64encode(image.png).decode("ascii")
        else:
            item.url = signer.image_url(base_url, row.id)
        data.append(item)
    return ImagesResponse(created=int(time.time()), data=data)


def generation_public(row: Generation, *, signer: UrlSigner, base_url: str) -> GenerationPublic:
    return GenerationPublic(
        id=row.id,
        created=int(row.created_at.timestamp()),
        kind=row.kind,
        model=row.model,
        base=row.base_id,
        prompt=row.prompt,
        revised_prompt=row.revised_prompt,
        negative_prompt=row.negative_prompt,
        params=row.params,
        seed=row.seed,
        width=row.width,
        height=row.height,
        url=signer.image_url(base_url, row.id),
        generation_time_s=row.generation_time_s,
        favorite=row.favorite,
        rating=row.rating,
        feedback=row.feedback,
    )
