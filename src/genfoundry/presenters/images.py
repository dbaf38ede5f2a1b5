"""Generated images: the answer to /v1/images/generations and /v1/images/edits, and the history's rows. Image URLs
are signed by the caller's `signer` against the request's `base_url`, so they open in a browser without a key."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from genfoundry.db.tables import Generation
from genfoundry.schemas import GenerationPublic, ImagePublic, ImagesResponse
from genfoundry.schemas.images import ImageStreamEvent
from genfoundry.services.image_quality import reported_quality
from genfoundry.services.images import PartialImage, PlannedRequest, RecordedImage

if TYPE_CHECKING:
    from genfoundry.services.urls import UrlSigner

# The sizes OpenAI's stream events may name; any other size is reported as "auto" (the image itself has it).
_OPENAI_EVENT_SIZES = frozenset({"1024x1024", "1024x1536", "1536x1024"})
# Diffusion models are not billed by tokens: usage is present, as OpenAI's completed events require, and zero.
_NO_TOKENS = {
    "total_tokens": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
}


def images_response(
    recorded: Sequence[RecordedImage], *, response_format: str, signer: UrlSigner, base_url: str
) -> ImagesResponse:
    """Each image as base64 (`response_format="b64_json"`) or as a signed URL, with OpenAI's output fields."""
    data = []
    for image in recorded:
        row = image.row
        item = ImagePublic(
            revised_prompt=row.revised_prompt, id=row.id, seed=row.seed, generation_time_s=row.generation_time_s
        )
        if response_format == "b64_json":
            item.b64_json = base64.b64encode(image.content).decode("ascii")
        else:
            item.url = signer.image_url(base_url, row.id)
        data.append(item)
    params = recorded[0].row.params if recorded else {}
    quality = params.get("quality")  # None when the request named its steps
    return ImagesResponse(
        created=int(time.time()),
        data=data,
        output_format=params.get("output_format", "png"),
        background="opaque",
        quality=reported_quality(quality) if quality else None,
    )


def image_stream_event(item: PartialImage | RecordedImage, planned: PlannedRequest) -> ImageStreamEvent:
    """A streamed preview or the final image as OpenAI's `image_generation.*` / `image_edit.*` event."""
    prefix = "image_edit" if planned.kind == "edit" else "image_generation"
    size = planned.params["size"]
    quality = planned.params.get("quality")
    fields: dict[str, Any] = {
        "created_at": int(time.time()),
        "size": size if size in _OPENAI_EVENT_SIZES else "auto",
        "quality": quality if quality in ("low", "medium", "high") else "high" if quality == "hd" else "auto",
        "background": planned.params.get("background") or "auto",
        "output_format": planned.output_format,
        "b64_json": base64.b64encode(item.content).decode("ascii"),
    }
    if isinstance(item, PartialImage):
        fields.update(type=f"{prefix}.partial_image", partial_image_index=item.index)
    else:
        fields.update(type=f"{prefix}.completed", usage=_NO_TOKENS, id=item.row.id, seed=item.row.seed)
    return ImageStreamEvent.model_validate(fields)


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
