"""Seed 000's API (super-realism) under `/compat/super-realism`: generate with the configured base, adapter and
trigger word; train a LoRA from keywords and a ZIP in one call; classify a prompt with our router."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from genfoundry.api.admission import ImagePlaceDep
from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.routes.compat.images import PNG_ANSWER, png_response
from genfoundry.errors import Invalid
from genfoundry.schemas import ImageOptions, LoraRef
from genfoundry.schemas.fine_tuning import FineTuningJobCreate
from genfoundry.services.images import add_trigger_words

router = APIRouter(prefix="/compat/super-realism", tags=["compat: super-realism"])

# The router's labels in the seed's words (its classifier told image requests from casual conversation).
_CLASSES = {"image": "image request", "chat": "casual conversation", "diagram": "diagram"}


class PromptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"prompt": "a lighthouse at dawn"}]})

    prompt: str = Field(min_length=1)


class TrainStarted(BaseModel):
    message: Literal["Training started"] = "Training started"
    dataset_id: str
    job_id: str
    base_model: str
    trigger_word: str
    images: int  # images the ZIP gave (the rest are listed at /v1/datasets/{dataset_id}/items)


class PromptClass(BaseModel):
    prompt: str
    classification: str  # "image request", "casual conversation" or "diagram"
    is_image_request: bool
    label: str  # the router's own label: image, chat or diagram
    scores: dict[str, float]
    ambiguous: bool


@router.post("/generate/", response_class=Response, responses=PNG_ANSWER)
async def generate_super_realism(
    body: PromptRequest, services: ServicesDep, place: ImagePlaceDep, principal: PrincipalDep
) -> Response:
    """Text to image with `compat.super_realism_*` (base, adapter, trigger word, size): the PNG itself."""
    config = services.settings.compat
    options = ImageOptions(
        prompt=add_trigger_words(body.prompt, [config.super_realism_trigger_word]),
        model=config.super_realism_base,
        size=config.super_realism_size,
        loras=[LoraRef(id=config.super_realism_adapter)] if config.super_realism_adapter else [],
    )
    [image] = await services.images.generate(owner_id=principal.user_id, options=options, place=place)
    return png_response(image)


@router.post("/train/", status_code=202)
def train_super_realism(
    services: ServicesDep,
    principal: PrincipalDep,
    prompt: Annotated[str, Form(min_length=1, max_length=200, description="Keywords: the LoRA's trigger word")],
    file: Annotated[UploadFile, File(description="ZIP of images, with optional same-name .txt captions")],
) -> TrainStarted:
    """One call for the dataset (keywords as its trigger word in every caption) and a LoRA job on the configured
    base; follow the job at /v1/fine_tuning/jobs/{job_id}."""
    keywords = " ".join(prompt.split())
    if not keywords:
        raise Invalid("prompt must name the keywords to train", param="prompt")
    base = services.settings.compat.super_realism_base
    dataset, _report = services.datasets.upload_zip(
        owner_id=principal.user_id,
        name=f"super-realism: {keywords}",
        upload=file.file,
        trigger_word=keywords,
        filename=file.filename,
    )
    try:
        if not dataset.accepted:
            raise Invalid("the ZIP holds no usable image", param="file")
        job = services.fine_tuning.create(
            owner_id=principal.user_id, body=FineTuningJobCreate(model=base, training_file=dataset.id)
        )
    except BaseException:
        services.datasets.delete(owner_id=principal.user_id, dataset_id=dataset.id)  # nothing left of a refusal
        raise
    return TrainStarted(
        dataset_id=dataset.id, job_id=job.id, base_model=base, trigger_word=keywords, images=dataset.accepted
    )


@router.post("/classify/")
def classify_super_realism(body: PromptRequest, services: ServicesDep, principal: PrincipalDep) -> PromptClass:
    """Image request or casual conversation, by the default router (which also knows diagrams)."""
    prediction = services.classifiers.classify(principal.user_id, [body.prompt]).predictions[0]
    return PromptClass(
        prompt=body.prompt,
        classification=_CLASSES.get(prediction.label, prediction.label),
        is_image_request=prediction.label == "image",
        label=prediction.label,
        scores=prediction.scores,
        ambiguous=prediction.ambiguous,
    )
