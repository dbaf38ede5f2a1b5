"""Supervised fine-tuning of a text base (`method.type` "supervised", alias "sft"): LoRA, or QLoRA with quantization
"4bit". The adapter, and each checkpoint, is registered as a text adapter for /v1/chat/completions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from genfoundry.catalog import TextModelEntry
from genfoundry.db.tables import Dataset
from genfoundry.errors import Conflict, Invalid, NotFound
from genfoundry.jobs.context import JobContext
from genfoundry.repo import datasets as datasets_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import slug
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.schemas.fine_tuning import SUPERVISED, SftHyperparameters
from genfoundry.services.fine_tuning.method import (
    FineTuningMethod,
    check_ready,
    json_value,
    scaled_learning_rate,
    without_auto,
)
from genfoundry.services.text_adapters import TEXT_FAMILY, register_text_adapter
from genfoundry.training.sft_data import SFT_FORMATS

SFT_KIND = "fine_tune_sft"

DEFAULT_LEARNING_RATE = 2e-4  # what learning_rate_multiplier scales when learning_rate is not given
_AUTO = ("n_epochs", "batch_size", "learning_rate_multiplier")
# Fields of the legacy top-level `hyperparameters` (the image schema) that mean something to SFT.
_SHARED = (
    "n_epochs",
    "batch_size",
    "learning_rate_multiplier",
    "max_steps",
    "learning_rate",
    "rank",
    "alpha",
    "gradient_accumulation_steps",
    "checkpoint_every_n_steps",
)


def sft_params(body: FineTuningJobCreate) -> dict[str, Any]:
    """The recipe's hyperparameters from the request: method.supervised settings win over the top-level ones; "auto"
    keeps the default; learning_rate_multiplier scales learning_rate (default DEFAULT_LEARNING_RATE)."""
    merged: dict[str, Any] = {}
    if body.hyperparameters is not None:
        legacy = body.hyperparameters.model_dump(exclude_none=True)
        for name in legacy:
            if name not in _SHARED:
                raise Invalid(f"{name} is an image hyperparameter; SFT does not take it", param=name)
        merged.update(legacy)
    merged.update(body.sft_settings().model_dump(exclude_none=True))
    merged = scaled_learning_rate(without_auto(merged, _AUTO), DEFAULT_LEARNING_RATE)
    if body.seed is not None:
        merged["seed"] = body.seed
    return merged


def training_device(device: str) -> str:
    """The recipe's device for the server's resolved one (the recipe knows CUDA and the CPU)."""
    return "cuda" if device.startswith("cuda") else "cpu"


class SftMethod(FineTuningMethod):
    """Supervised fine-tuning of a text model on prompt/completion or chat lines: a LoRA (QLoRA with 4-bit)."""

    name: ClassVar[str] = SUPERVISED
    kind: ClassVar[str] = SFT_KIND
    hyperparameters_model: ClassVar[type[BaseModel]] = SftHyperparameters
    dataset: ClassVar[str] = "text"
    takes_validation_file: ClassVar[bool] = True

    def bases(self, owner_id: str) -> list[tuple[str, str]]:
        return [(model_id, TEXT_FAMILY) for model_id in self.env.catalog.text_models]

    def defaults(self) -> dict[str, dict[str, Any]]:
        from genfoundry.training.sft_config import SftTrainingConfig

        config = SftTrainingConfig(base_source="defaults")
        renamed = {"n_epochs": "epochs"}
        return {
            TEXT_FAMILY: {
                name: json_value(getattr(config, renamed.get(name, name), None))
                for name in self.hyperparameters_model.model_fields
            }
        }

    def base(self, model: str) -> TextModelEntry:
        """The text base `model` names; an image model is a 400 that says so."""
        catalog = self.env.catalog
        if model in catalog.models:
            raise Invalid(
                f"'{model}' is an image model; method 'supervised' fine-tunes a text model (lora or dreambooth "
                "train image models)",
                param="model",
            )
        return catalog.get_text(model)

    def config(self, base: TextModelEntry, hyperparameters: dict[str, Any]) -> Any:
        from genfoundry.training.sft_config import SftTrainingConfig

        return SftTrainingConfig.from_params(
            base.source,
            hyperparameters,
            base_id=base.id,
            prompt_format=base.prompt_format,
            device=training_device(self.env.settings.resolved_device()),
        )

    def _text_dataset(self, session: Session, owner_id: str, dataset_id: str, param: str) -> Dataset:
        dataset = self.owned_dataset(session, owner_id, dataset_id, param=param)
        if dataset.kind != "text" or dataset.text_format not in SFT_FORMATS:
            what = "images" if dataset.kind != "text" else f"{dataset.text_format} lines"
            raise Invalid(
                f'SFT trains on a JSONL file of {{"prompt", "completion"}} or {{"messages"}} lines; this dataset '
                f"holds {what}",
                param=param,
            )
        check_ready(dataset)
        if dataset.accepted == 0:
            raise Invalid("the dataset has no examples", param=param)
        return dataset

    def validate(self, session: Session, owner_id: str, body: FineTuningJobCreate) -> dict[str, Any]:
        base = self.base(body.model)
        hyperparameters = sft_params(body)
        config = self.config(base, hyperparameters)  # every range check, before queueing
        if config.quantization == "4bit" and importlib.util.find_spec("bitsandbytes") is None:
            raise Invalid(
                'quantization "4bit" (QLoRA) needs bitsandbytes: pip install bitsandbytes', param="quantization"
            )
        dataset = self._text_dataset(session, owner_id, body.training_file, "training_file")
        validation = None
        if body.validation_file is not None:
            validation = self._text_dataset(session, owner_id, body.validation_file, "validation_file")
            if config.validation_fraction > 0:
                raise Invalid("give a validation_file or a validation_fraction, not both", param="validation_fraction")
        return {
            "method": self.name,
            "base_id": base.id,
            "dataset_id": dataset.id,
            "validation_dataset_id": validation.id if validation is not None else None,
            "suffix": body.suffix,
            "hyperparameters": hyperparameters,
        }

    def run(self, ctx: JobContext) -> dict[str, Any]:
        from genfoundry.text.formats import TextFormat
        from genfoundry.training.callbacks import TrainingCallbacks
        from genfoundry.training.sft import train_sft

        env, params = self.env, ctx.params
        base = env.catalog.get_text(params["base_id"])
        config = self.config(base, dict(params["hyperparameters"]))
        validation_id = params.get("validation_dataset_id")
        with env.sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=ctx.job_id)
            dataset = datasets_repo.get_dataset(session=session, dataset_id=params["dataset_id"])
            validation = datasets_repo.get_dataset(session=session, dataset_id=validation_id) if validation_id else None
        if job is None or dataset is None or (validation_id and validation is None):
            raise NotFound("the training data was deleted")
        owner_id = job.owner_id
        name = slug("-".join(part for part in ("ft", base.id, params.get("suffix")) if part))
        last: dict[str, float] = {}

        def register(adapter_name: str, peft_dir: Path, tags: dict[str, str]) -> str:
            return register_text_adapter(
                sessions=env.sessions,
                store=env.store,
                owner_id=owner_id,
                base_id=base.id,
                name=adapter_name,
                peft_dir=peft_dir,
                text_format=TextFormat.read(peft_dir),
                tags=tags,
            ).id

        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            ctx.progress(step, total)
            ctx.metrics(step, total=total, **metrics)
            last.update(metrics)

        def on_checkpoint(step: int, path: Path) -> None:
            # Each checkpoint becomes an adapter at once, so it can be chatted with while training goes on.
            adapter_id = register(f"{name}-step-{step}", path, {"job": ctx.job_id, "checkpoint_step": str(step)})
            evals: dict[str, float] = {k: last[k] for k in ("eval_loss", "token_accuracy") if k in last}
            ctx.checkpoint(step, str(path), adapter_id=adapter_id, loss=last.get("loss"), **evals)

        callbacks = TrainingCallbacks(
            on_step=on_step, on_checkpoint=on_checkpoint, should_stop=ctx.cancel_requested, on_log=ctx.log
        )
        result = train_sft(
            config,
            self.dataset_file(dataset.id),
            self.work_dir / ctx.job_id,
            callbacks,
            resume_from=Path(ctx.resume_from) if ctx.resume_from else None,
            validation_path=self.dataset_file(validation.id) if validation is not None else None,
        )
        if result.stopped or result.adapter_path is None:
            ctx.check_cancelled()
            raise Conflict("training stopped before the end")
        adapter_id = register(name, result.adapter_path, {"job": ctx.job_id})
        evals: dict[str, float] = {k: round(last[k], 6) for k in ("eval_loss", "token_accuracy") if k in last}
        return {"fine_tuned_model": adapter_id, "steps": result.step, **evals}
