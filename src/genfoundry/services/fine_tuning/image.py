"""LoRA and DreamBooth on an image base: each checkpoint becomes an adapter as it is saved, the result an adapter
(or, for a DreamBooth `train_mode: "full"`, a private model)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from genfoundry.errors import Conflict, Invalid, NotFound
from genfoundry.jobs.context import JobContext
from genfoundry.model_files import SingleFileBase, check_single_file_base, parse_single_file_source
from genfoundry.repo import datasets as datasets_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import slug
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.schemas.fine_tuning import DreamBoothHyperparameters, ImageTrainingHyperparameters
from genfoundry.services.adapters import AdapterService
from genfoundry.services.datasets import dataset_image_dir
from genfoundry.services.fine_tuning.method import (
    FineTuningMethod,
    check_ready,
    json_value,
    scaled_learning_rate,
    without_auto,
)
from genfoundry.services.trained_models import register_trained_model

IMAGE_TRAINING_KIND = "fine_tune_lora"  # LoRA and DreamBooth runs alike
DEFAULT_LEARNING_RATE = 1e-4  # what learning_rate_multiplier scales when learning_rate is not given
# OpenAI's names, mapped onto the recipe's (and the recipe's back, in its errors).
_RENAMED = {"n_epochs": "epochs"}
_API_NAMES = {"epochs": "n_epochs", "use_8bit_adam": "optimizer"}
_OPTIMIZERS = ("adamw", "adamw8bit")
_AUTO = ("n_epochs", "batch_size", "learning_rate_multiplier")
_SAMPLE_NAME = re.compile(r"^step_\d{6}_\d{1,2}\.png$")


def sample_key(job_id: str, name: str) -> str:
    """Where a job's sample image lives in the artifact store; the name must be one a recipe writes."""
    if not _SAMPLE_NAME.match(name):
        raise NotFound(f"No sample named '{name}'")
    return f"jobs/{job_id}/samples/{name}"


def recipe_params(body: FineTuningJobCreate) -> dict[str, Any]:
    """The recipe's hyperparameters from the request (method settings win over the legacy top-level ones)."""
    merged: dict[str, Any] = {}
    for source in (body.hyperparameters, body.image_settings()):
        if source is not None:
            merged.update(source.model_dump(exclude_none=True))
    merged = scaled_learning_rate(without_auto(merged, _AUTO), DEFAULT_LEARNING_RATE)
    return {_RENAMED.get(k, k): v for k, v in merged.items()}


class ImageMethod(FineTuningMethod):
    """What LoRA and DreamBooth share: an image base, an image dataset, a recipe of `training/registry.py`."""

    kind: ClassVar[str] = IMAGE_TRAINING_KIND
    dataset: ClassVar[str] = "image"

    def bases(self, owner_id: str) -> list[tuple[str, str]]:
        return [(entry.id, entry.family) for entry in self.env.catalog.visible(owner_id)]

    def defaults(self) -> dict[str, dict[str, Any]]:
        from genfoundry.training.config import FAMILIES

        found: dict[str, dict[str, Any]] = {}
        for family in FAMILIES:
            config = self.config(family, "defaults", {})
            found[family] = {
                name: json_value(getattr(config, _RENAMED.get(name, name), None))
                for name in self.hyperparameters_model.model_fields
            }
        return found

    def config(self, family: str, base_source: str, hyperparameters: dict[str, Any]) -> Any:
        from genfoundry.training.registry import CONFIGS

        params = dict(hyperparameters)
        if "optimizer" in params:  # the job keeps the API's name; the recipe's config, use_8bit_adam
            optimizer = params.pop("optimizer")
            if optimizer not in _OPTIMIZERS:
                raise Invalid(
                    f"optimizer must be one of {', '.join(_OPTIMIZERS)}; got {optimizer!r}", param="optimizer"
                )
            params["use_8bit_adam"] = optimizer == "adamw8bit"
        try:
            return CONFIGS[self.name].from_params(family, base_source, params)
        except Invalid as exc:  # the recipe names its own fields; the caller sent the API's
            if exc.param in _API_NAMES:
                exc.param = _API_NAMES[exc.param]
            raise

    def validate(
        self, session: Session, owner_id: str, body: FineTuningJobCreate, *, single_file: SingleFileBase | None = None
    ) -> dict[str, Any]:
        """`single_file`: train from these files instead of `body.model`'s weights (a base of the same family,
        whose configs they use, and the base the result is registered against). Only a server-side caller that
        resolved the files inside the models folder passes it (the compat flux-train route); the native API
        cannot."""
        if body.model in self.env.catalog.text_models:
            raise Invalid(
                f"'{body.model}' is a text model; method '{self.name}' trains image models (method 'supervised' "
                "fine-tunes text models)",
                param="model",
            )
        base = self.env.catalog.find_visible(body.model, owner_id)  # a public base, or one of the caller's trained
        if base is None:
            raise NotFound(f"The model '{body.model}' does not exist", param="model")
        source = base.source
        if single_file is not None:
            check_single_file_base(base.id, base.family, single_file)
            source = single_file.to_source()
        dataset = self.owned_dataset(session, owner_id, body.training_file, param="training_file")
        if dataset.kind != "image":
            raise Invalid(f"{self.name} training needs an image dataset; this one is text", param="training_file")
        check_ready(dataset)
        if dataset.accepted == 0:
            raise Invalid("the dataset has no images", param="training_file")
        hyperparameters = recipe_params(body)
        hyperparameters.setdefault("trigger_word", dataset.trigger_word)
        if body.seed is not None:
            hyperparameters["seed"] = body.seed
        config = self.config(base.family, source, hyperparameters)  # every range check, before queueing
        check_device(config, explicit_8bit=hyperparameters.get("optimizer") == "adamw8bit")
        params = {
            "method": self.name,
            "base_id": base.id,
            "dataset_id": dataset.id,
            "suffix": body.suffix,
            "hyperparameters": hyperparameters,
        }
        if single_file is not None:
            params["base_source"] = source
        return params

    def recipe_options(self) -> dict[str, Any]:
        """Keyword arguments this method's recipe takes besides the common ones."""
        return {}

    def run(self, ctx: JobContext) -> dict[str, Any]:
        from genfoundry.training.callbacks import TrainingCallbacks
        from genfoundry.training.checkpoints import LORA_WEIGHT_NAME
        from genfoundry.training.registry import RECIPES

        env, params = self.env, ctx.params
        with env.sessions() as session:
            dataset = datasets_repo.get_dataset(session=session, dataset_id=params["dataset_id"])
            job = jobs_repo.get_job(session=session, job_id=ctx.job_id)
        if dataset is None or job is None:
            raise NotFound("the training dataset was deleted")
        base = env.catalog.get_visible(params["base_id"], job.owner_id)
        source = base.source
        if params.get("base_source"):  # single files given at creation (checked then), read with the base's configs
            source = str(params["base_source"])
            single = parse_single_file_source(source)
            if single is not None:
                names = ", ".join(path.name for path in single.files())
                ctx.log(f"base: the single files {names}, with the configs of {base.id}")
        config = self.config(base.family, source, params["hyperparameters"])
        adapters = AdapterService(
            sessions=env.sessions, store=env.store, catalog=env.catalog, engine=None, work_dir=env.settings.home / "tmp"
        )
        name = slug("-".join(part for part in ("ft", base.id, params.get("suffix")) if part))
        last_loss: dict[str, float] = {}

        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            ctx.progress(step, total)
            ctx.metrics(step, total=total, **metrics)
            last_loss["loss"] = metrics["loss"]

        def on_checkpoint(step: int, path: Path) -> None:
            # A LoRA checkpoint becomes an adapter at once, so it can be tried while training goes on (a full
            # fine-tune's checkpoint is a whole UNet: it only serves to resume).
            adapter_id = None
            if (path / LORA_WEIGHT_NAME).is_file():
                adapter_id = adapters.import_upload(
                    owner_id=job.owner_id,
                    upload=path / LORA_WEIGHT_NAME,
                    base_id=base.id,
                    name=f"{name}-step-{step}",
                    trigger_word=config.trigger_word,
                    tags={"job": ctx.job_id, "checkpoint_step": str(step)},
                ).id
            ctx.checkpoint(step, str(path), adapter_id=adapter_id, loss=last_loss.get("loss"))

        def on_sample(step: int, prompt: str, path: Path) -> None:
            env.store.put_file(sample_key(ctx.job_id, path.name), path)
            ctx.event("sample", f"sample at step {step}: {prompt}", step=step, prompt=prompt, name=path.name)

        callbacks = TrainingCallbacks(
            on_step=on_step,
            on_checkpoint=on_checkpoint,
            on_sample=on_sample,
            should_stop=ctx.cancel_requested,
            on_log=ctx.log,
        )
        result = RECIPES[self.name](
            config,
            dataset_image_dir(sessions=env.sessions, store=env.store, dataset=dataset),
            self.work_dir / ctx.job_id,
            callbacks,
            resume_from=Path(ctx.resume_from) if ctx.resume_from else None,
            **self.recipe_options(),
        )
        if result.stopped or (result.adapter_path is None and result.model_path is None):
            ctx.check_cancelled()
            raise Conflict("training stopped before the end")
        if result.model_path is not None:
            model_id = register_trained_model(
                models_dir=env.settings.home / "models",
                owner_id=job.owner_id,
                family=base.family,
                source_dir=result.model_path,
                model_id=f"{name}-{ctx.job_id.removeprefix('job_')[:8]}",
                description=f"{self.name} fine-tune of {base.id} (job {ctx.job_id})",
                base_id=base.id,
                defaults=base.defaults,
                move=True,
            )
            return {"fine_tuned_model": model_id, "steps": result.step}
        assert result.adapter_path is not None
        adapter = adapters.import_upload(
            owner_id=job.owner_id,
            upload=result.adapter_path,
            base_id=base.id,
            name=name,
            trigger_word=config.trigger_word,
            tags={"job": ctx.job_id},
        )
        return {"fine_tuned_model": adapter.id, "steps": result.step}


def check_device(config: Any, *, explicit_8bit: bool) -> None:
    """What this machine cannot run is a 400 before queueing: a mixed precision, 8-bit AdamW asked for by name."""
    from genfoundry.training.lora_setup import bitsandbytes_problem, resolve_mixed_precision

    resolve_mixed_precision(config.mixed_precision)
    problem = bitsandbytes_problem() if explicit_8bit else None
    if problem is not None:
        raise Invalid(f'optimizer "adamw8bit" cannot run here: {problem}; use "adamw"', param="optimizer")


class LoraMethod(ImageMethod):
    """LoRA on the base's denoiser, captions (with the trigger word) as prompts."""

    name: ClassVar[str] = "lora"
    hyperparameters_model: ClassVar[type[BaseModel]] = ImageTrainingHyperparameters


class DreamBoothMethod(ImageMethod):
    """DreamBooth: an instance prompt, prior preservation with generated class images, LoRA or the whole UNet."""

    name: ClassVar[str] = "dreambooth"
    hyperparameters_model: ClassVar[type[BaseModel]] = DreamBoothHyperparameters

    def recipe_options(self) -> dict[str, Any]:
        # Generated class images are cached across runs with the same base, prompt and count.
        return {"class_cache_dir": self.env.settings.home / "cache" / "class_images"}
