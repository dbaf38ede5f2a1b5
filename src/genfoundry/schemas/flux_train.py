"""flux-train's requests and answers (seed 001), under /compat/flux-train: its field names and defaults, our ranges.

Fields past the seed's own are marked "ours"; docs/compat.md maps each one onto the native API.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from genfoundry.schemas.common import FINITE, Seed

OutputName = Annotated[
    str, Field(min_length=1, max_length=200, description="The caller's dataset (and model) name; one per user.")
]
ModelFile = Annotated[
    str | None, Field(default=None, max_length=500, description="A catalog base id, or a path in the models folder.")
]


class DownloadImagesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urls: list[str] = Field(min_length=1, description="Image URLs to download into the dataset.")
    output_name: OutputName


class DownloadImagesResponse(BaseModel):
    message: str
    files: dict[str, str] = Field(description="Each URL → the stored image's /v1 path, or 'error: <reason>'.")
    dataset_id: str
    job_id: str
    status_url: str = Field(description="Where to follow the download job (/v1/jobs/{job_id}).")


class CaptionImagesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_name: OutputName
    trigger_word: str | None = Field(default=None, max_length=200)
    prompt: str | None = Field(default=None, max_length=500, description="Captioner prompt or Florence-2 task.")
    model: str | None = Field(default=None, max_length=120, description="Ours: the captioner (GET /v1/models).")


class CaptionImagesResponse(BaseModel):
    message: str
    captions: dict[str, str] = Field(description="Each image file → its caption (empty while the job runs).")
    dataset_id: str
    job_id: str
    status_url: str


class DatasetConfigRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_name: OutputName
    trigger_word: str | None = Field(default=None, max_length=200, description="kohya's class_tokens.")
    num_repeats: int = 10
    resolution: int = 1024
    batch_size: int = 1
    enable_bucket: bool = True
    keep_tokens: int = 0
    shuffle_caption: bool = False


class DatasetConfigResponse(BaseModel):
    message: str
    path: str = Field(description="The /v1 URL that answers this TOML (with the caller's key).")
    dataset_id: str
    config: str = Field(description="The kohya dataset TOML itself.")


class TrainRequest(BaseModel):
    """kohya's names; each maps onto a native LoRA hyperparameter (docs/compat.md)."""

    model_config = ConfigDict(extra="forbid")

    output_name: OutputName
    max_train_epochs: int | None = Field(default=None, ge=1, le=10_000)
    learning_rate: Annotated[float, Field(gt=0, le=1), FINITE] | None = None
    network_dim: int | None = Field(default=None, ge=1, le=256)
    network_alpha: Annotated[float, Field(gt=0, le=4096), FINITE] | None = None
    save_every_n_epochs: int | None = Field(default=None, ge=1, le=10_000)
    pretrained_model: ModelFile
    clip_l: ModelFile
    t5xxl: ModelFile
    ae: ModelFile
    enable_bucket: bool | None = None
    full_bf16: bool | None = None
    resolution: int | None = Field(default=None, ge=64, le=4096, description="Ours: the training image side.")
    seed: Seed | None = None


class TrainResponse(BaseModel):
    message: str
    run_id: str
    status_url: str = Field(description="The native job (/v1/fine_tuning/jobs/{run_id}).")


class TrainStatusResponse(BaseModel):
    run_id: str
    status: str
    progress: dict[str, int]
    logs: list[str] = Field(description="The last 10 log lines, oldest first.")
    fine_tuned_model: str | None = None
    error: str | None = None
