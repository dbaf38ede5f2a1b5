"""flux-train's API (seed 001) over the native services: datasets addressed by name, jobs waited on for short work.

Nothing here downloads, captions or trains: each call is one native service call (the URL job, the captioning job,
the kohya export, a LoRA fine-tuning job, the job log), its answer reshaped into flux-train's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from genfoundry.datasets.kohya import KohyaOptions
from genfoundry.db.tables import Dataset, Job
from genfoundry.errors import Conflict, GenfoundryError, Invalid, NotFound, Unprocessable
from genfoundry.model_files import SingleFileBase, config_source, resolve_model_file
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.schemas.fine_tuning import FineTuningMethod, ImageTrainingHyperparameters, MethodSettings
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
from genfoundry.schemas.jobs import ACTIVE_STATUSES, JobStatus
from genfoundry.services.jobs import JobService

if TYPE_CHECKING:
    from genfoundry.services import Services

SYNC_MAX_URLS = 20  # more URLs than this: answer the job at once instead of waiting for the downloads
DOWNLOAD_WAIT_S = 60.0
CAPTION_WAIT_S = 120.0
LOG_LINES = 10
# Native hyperparameter or field → the flux-train field a native error is reported under.
_COMPAT_PARAMS = {
    "epochs": "max_train_epochs",
    "n_epochs": "max_train_epochs",
    "rank": "network_dim",
    "alpha": "network_alpha",
    "bucketing": "enable_bucket",
    "mixed_precision": "full_bf16",
    "training_file": "output_name",
    "model": "pretrained_model",
}
# flux-train's file fields → the FLUX pipeline component each one replaces.
_COMPONENT_FIELDS = {"ae": "vae", "clip_l": "text_encoder", "t5xxl": "text_encoder_2"}


@dataclass(frozen=True)
class Answer:
    """A response body and whether the work it describes is still running (202) or done (200)."""

    body: Any
    running: bool = False


def wait_for_end(jobs: JobService, *, owner_id: str, job_id: str, timeout_s: float) -> Job:
    """The job once it has ended, or as it is when `timeout_s` runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = jobs.get(owner_id=owner_id, job_id=job_id)
        if job.status not in ACTIVE_STATUSES or time.monotonic() >= deadline:
            return job
        time.sleep(0.1)


def _item_path(dataset_id: str, item_id: str) -> str:
    return f"/v1/datasets/{dataset_id}/items/{item_id}/image"


def _check_relative(field: str, value: str) -> None:
    """A model file path must stay inside the models folder: no absolute path, no `..`, no home directory."""
    pure = PurePosixPath(value)
    if pure.is_absolute() or value.startswith(("~", "\\")) or (len(value) > 1 and value[1] == ":"):
        raise Invalid(f"{field} must be a path relative to the models folder, not an absolute path", param=field)
    if ".." in pure.parts or ".." in value.split("\\"):
        raise Invalid(f"{field} may not contain '..'; it must stay inside the models folder", param=field)


class FluxTrainCompat:
    def __init__(self, services: Services) -> None:
        self.services = services

    def named_dataset(self, *, owner_id: str, name: str) -> Dataset:
        dataset = self.services.datasets.find_by_name(owner_id=owner_id, name=name)
        if dataset is None:
            raise NotFound(f"No dataset named '{name}'", param="output_name")
        return dataset

    # -- POST /download-images ---------------------------------------------------------------------

    def download_images(self, *, owner_id: str, body: DownloadImagesRequest) -> Answer:
        existing = self.services.datasets.find_by_name(owner_id=owner_id, name=body.output_name)
        if existing is not None and existing.status != "failed":
            raise Conflict(
                f"output_name '{body.output_name}' is already dataset {existing.id}; pick another name or delete it "
                f"(DELETE /v1/datasets/{existing.id})",
                param="output_name",
            )
        dataset, job = self.services.datasets.create_from_urls(
            owner_id=owner_id, name=body.output_name, urls=body.urls, trigger_word=None
        )
        if len(body.urls) <= SYNC_MAX_URLS:
            job = wait_for_end(self.services.user_jobs, owner_id=owner_id, job_id=job.id, timeout_s=DOWNLOAD_WAIT_S)
        status_url = f"/v1/jobs/{job.id}"
        if job.status in ACTIVE_STATUSES:
            message = f"Download started: {len(body.urls)} URLs; follow {status_url}"
            return Answer(
                DownloadImagesResponse(
                    message=message, files={}, dataset_id=dataset.id, job_id=job.id, status_url=status_url
                ),
                running=True,
            )
        items, _ = self.services.datasets.list_items(
            owner_id=owner_id, dataset_id=dataset.id, limit=len(body.urls) + 1, after=None, status=None
        )
        files: dict[str, str] = {}
        for item in items:
            if item.status == "ok":
                files[item.source] = _item_path(dataset.id, item.id)
            elif item.status == "duplicate":
                files[item.source] = f"error: the same image as {item.duplicate_of}"
            else:
                files[item.source] = f"error: {item.reason or item.status}"
        for url in body.urls:  # a job cancelled before a URL's turn leaves it without an item
            files.setdefault(url, f"error: not downloaded (the download job {job.status})")
        message = "Download complete" if job.status == JobStatus.SUCCEEDED else "No image could be downloaded"
        return Answer(
            DownloadImagesResponse(
                message=message, files=files, dataset_id=dataset.id, job_id=job.id, status_url=status_url
            )
        )

    # -- POST /caption-images ----------------------------------------------------------------------

    def caption_images(self, *, owner_id: str, body: CaptionImagesRequest) -> Answer:
        dataset = self.named_dataset(owner_id=owner_id, name=body.output_name)
        job = self.services.datasets.start_captioning(
            owner_id=owner_id,
            dataset_id=dataset.id,
            model=body.model or self.services.settings.compat.flux_train_captioner,
            prompt=body.prompt,
            trigger_word=body.trigger_word,
            overwrite=True,  # flux-train captions every image of the folder on each call
            batch_size=None,
        )
        job = wait_for_end(self.services.user_jobs, owner_id=owner_id, job_id=job.id, timeout_s=CAPTION_WAIT_S)
        status_url = f"/v1/jobs/{job.id}"
        if job.status in ACTIVE_STATUSES:
            return Answer(
                CaptionImagesResponse(
                    message=f"Captioning started; follow {status_url}",
                    captions={},
                    dataset_id=dataset.id,
                    job_id=job.id,
                    status_url=status_url,
                ),
                running=True,
            )
        if job.status != JobStatus.SUCCEEDED:
            raise Unprocessable(f"captioning {job.status}: {job.error or 'no reason given'}", param="output_name")
        items, _ = self.services.datasets.list_items(
            owner_id=owner_id, dataset_id=dataset.id, limit=max(dataset.accepted, 1), after=None, status="ok"
        )
        captions = {item.file: item.caption or "" for item in items if item.file}
        return Answer(
            CaptionImagesResponse(
                message="Captions generated and saved",
                captions=captions,
                dataset_id=dataset.id,
                job_id=job.id,
                status_url=status_url,
            )
        )

    # -- POST /create-dataset-config ---------------------------------------------------------------

    def dataset_config(self, *, owner_id: str, body: DatasetConfigRequest) -> DatasetConfigResponse:
        dataset = self.named_dataset(owner_id=owner_id, name=body.output_name)
        options = KohyaOptions(
            resolution=body.resolution,
            batch_size=body.batch_size,
            num_repeats=body.num_repeats,
            enable_bucket=body.enable_bucket,
            class_tokens=body.trigger_word,
            keep_tokens=body.keep_tokens,
            shuffle_caption=body.shuffle_caption,
        )
        text = self.services.datasets.kohya_config_for(owner_id=owner_id, dataset_id=dataset.id, options=options)
        query: dict[str, Any] = {
            "format": "kohya",
            "resolution": body.resolution,
            "batch_size": body.batch_size,
            "num_repeats": body.num_repeats,
            "enable_bucket": str(body.enable_bucket).lower(),
            "keep_tokens": body.keep_tokens,
            "shuffle_caption": str(body.shuffle_caption).lower(),
        }
        if body.trigger_word is not None:
            query["class_tokens"] = body.trigger_word
        path = f"/v1/datasets/{dataset.id}/config?{urlencode(query)}"
        return DatasetConfigResponse(message="Dataset config created", path=path, dataset_id=dataset.id, config=text)

    # -- POST /train -------------------------------------------------------------------------------

    def train(self, *, owner_id: str, body: TrainRequest) -> TrainResponse:
        base_id, single_file = self._base(owner_id, body)
        hyperparameters = self._hyperparameters(body)
        dataset = self.named_dataset(owner_id=owner_id, name=body.output_name)
        create = FineTuningJobCreate(
            model=base_id,
            training_file=dataset.id,
            suffix=body.output_name[:64],
            seed=body.seed,
            method=FineTuningMethod(
                type="lora", lora=MethodSettings(hyperparameters=ImageTrainingHyperparameters(**hyperparameters))
            ),
        )
        try:
            job = self.services.fine_tuning.create(owner_id=owner_id, body=create, single_file=single_file)
        except GenfoundryError as exc:  # the native check names the native field; say the one the caller sent
            if exc.param in _COMPAT_PARAMS:
                exc.param = _COMPAT_PARAMS[exc.param]
            raise
        return TrainResponse(message="Training started", run_id=job.id, status_url=f"/v1/fine_tuning/jobs/{job.id}")

    def _base(self, owner_id: str, body: TrainRequest) -> tuple[str, SingleFileBase | None]:
        """The catalog base to train, and the single files to train it from, if any.

        `pretrained_model` naming a catalog base (or left out: the configured default) trains that base, which
        brings its own encoders and VAE. Otherwise it and `clip_l` / `t5xxl` / `ae` are files of the models folder
        (each resolved inside it: 400 for `..`, an absolute path or a symlink out; 404 for a missing file), trained
        with the configs of the configured FLUX base (settings.compat.flux_train_base), which the job reports as its
        `model` and the resulting adapter applies to."""
        files = {"pretrained_model": body.pretrained_model, "clip_l": body.clip_l, "t5xxl": body.t5xxl, "ae": body.ae}
        for field, value in files.items():
            if value is not None:
                _check_relative(field, value)
        default = self.services.settings.compat.flux_train_base
        name = body.pretrained_model or default
        if self.services.catalog.find_visible(name, owner_id) is not None:
            for field in ("clip_l", "t5xxl", "ae"):
                if files[field] is not None:
                    raise Invalid(
                        f"{field} applies to a single-file pretrained_model; the base '{name}' brings its own",
                        param=field,
                    )
            return name, None
        models_dir = self.services.settings.models_dir
        resolved = {
            field: str(resolve_model_file(models_dir, value, param=field))
            for field, value in files.items()
            if value is not None
        }
        base = self.services.catalog.find_visible(default, owner_id)
        if base is None or base.family != "flux":
            raise Invalid(
                f"pretrained_model: training from single files needs the configured FLUX base ({default!r}) for its "
                f"configs, and this server has none",
                param="pretrained_model",
            )
        components = {native: resolved[field] for field, native in _COMPONENT_FIELDS.items() if field in resolved}
        single = SingleFileBase(
            checkpoint=resolved["pretrained_model"], config=config_source(base.source), components=components
        )
        return base.id, single

    @staticmethod
    def _hyperparameters(body: TrainRequest) -> dict[str, Any]:
        """kohya's knobs under their native names; one the native API does not have yet is a 400 naming it."""
        native = ImageTrainingHyperparameters.model_fields
        wanted: list[tuple[str, str, Any]] = [
            ("max_train_epochs", "n_epochs", body.max_train_epochs),
            ("learning_rate", "learning_rate", body.learning_rate),
            ("network_dim", "rank", body.network_dim),
            ("network_alpha", "alpha", body.network_alpha),
            ("save_every_n_epochs", "save_every_n_epochs", body.save_every_n_epochs),
            ("enable_bucket", "bucketing", body.enable_bucket),
            # full_bf16 false asks for nothing beyond the default precision
            ("full_bf16", "mixed_precision", "bf16" if body.full_bf16 else None),
            ("resolution", "resolution", body.resolution),
        ]
        hyperparameters: dict[str, Any] = {}
        for field, name, value in wanted:
            if value is None:
                continue
            if name not in native:
                raise Invalid(
                    f"{field} is not supported yet: the native hyperparameter it maps to ({name}) does not exist here",
                    param=field,
                )
            hyperparameters[name] = value
        return hyperparameters

    # -- GET /status/{run_id} ----------------------------------------------------------------------

    def status(self, *, owner_id: str, run_id: str) -> TrainStatusResponse:
        fine_tuning = self.services.fine_tuning
        job = fine_tuning.get(owner_id=owner_id, job_id=run_id)
        events = fine_tuning.log_tail(owner_id=owner_id, job_id=run_id, limit=LOG_LINES)
        return TrainStatusResponse(
            run_id=job.id,
            status=job.status,
            progress={"step": job.progress_step, "total": job.progress_total},
            logs=[f"{event.created_at:%Y-%m-%d %H:%M:%S} {event.message}" for event in events],
            fine_tuned_model=job.result.get("fine_tuned_model") if job.result else None,
            error=job.error,
        )
