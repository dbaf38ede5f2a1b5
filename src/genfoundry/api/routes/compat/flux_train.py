"""flux-train (seed 001) under /compat/flux-train: download, caption, kohya config, train, status.

`output_name` is the caller's dataset name (and the trained model's suffix); each route is one call of
services/flux_train.py over the native services. docs/compat.md maps every field.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.schemas.flux_train import (
    CaptionImagesRequest,
    CaptionImagesResponse,
    DatasetConfigRequest,
    DatasetConfigResponse,
    DownloadImagesRequest,
    DownloadImagesResponse,
    TrainRequest,
    TrainResponse,
    TrainStatusResponse,
)
from genfoundry.services.flux_train import FluxTrainCompat

router = APIRouter(prefix="/compat/flux-train", tags=["compat: flux-train"])


@router.post("/download-images", responses={202: {"model": DownloadImagesResponse}})
def download_images(
    body: DownloadImagesRequest, response: Response, services: ServicesDep, principal: PrincipalDep
) -> DownloadImagesResponse:
    """Download images into a new dataset named `output_name`; each URL's stored path or error. Up to 20 URLs are
    waited for; more answer 202 with the job to follow."""
    answer = FluxTrainCompat(services).download_images(owner_id=principal.user_id, body=body)
    if answer.running:
        response.status_code = 202
    return answer.body  # type: ignore[no-any-return]


@router.post("/caption-images", responses={202: {"model": CaptionImagesResponse}})
def caption_images(
    body: CaptionImagesRequest, response: Response, services: ServicesDep, principal: PrincipalDep
) -> CaptionImagesResponse:
    """Caption every image of the dataset `output_name` (trigger word first) and answer the captions; a job still
    running after two minutes answers 202."""
    answer = FluxTrainCompat(services).caption_images(owner_id=principal.user_id, body=body)
    if answer.running:
        response.status_code = 202
    return answer.body  # type: ignore[no-any-return]


@router.post("/create-dataset-config")
def create_dataset_config(
    body: DatasetConfigRequest, services: ServicesDep, principal: PrincipalDep
) -> DatasetConfigResponse:
    """The dataset's kohya TOML; `path` is the /v1 URL that answers it again."""
    return FluxTrainCompat(services).dataset_config(owner_id=principal.user_id, body=body)


@router.post("/train")
def train(body: TrainRequest, services: ServicesDep, principal: PrincipalDep) -> TrainResponse:
    """Start a LoRA fine-tuning job on the dataset `output_name`; `run_id` is the native job id."""
    return FluxTrainCompat(services).train(owner_id=principal.user_id, body=body)


@router.get("/status/{run_id}")
def read_status(run_id: str, services: ServicesDep, principal: PrincipalDep) -> TrainStatusResponse:
    """A training run's status, progress and last 10 log lines."""
    return FluxTrainCompat(services).status(owner_id=principal.user_id, run_id=run_id)
