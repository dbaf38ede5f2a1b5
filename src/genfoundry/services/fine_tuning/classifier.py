"""A custom prompt classifier (`method.type` "classifier"): a logistic-regression head on the router's encoder,
trained on a JSONL file of {"text", "label"} lines and registered per owner for /v1/classify."""

from __future__ import annotations

import shutil
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from genfoundry.errors import Conflict, Invalid, NotFound
from genfoundry.jobs.context import JobContext
from genfoundry.repo import classifiers as classifiers_repo
from genfoundry.repo import datasets as datasets_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import new_id, slug
from genfoundry.router.encoder import ENCODER_ALIASES, ENCODER_ID
from genfoundry.router.head import HEAD_META, HEAD_WEIGHTS
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.schemas.fine_tuning import ClassifierHyperparameters
from genfoundry.services.classifiers import ROUTER_MODEL_ID, classifier_prefix, shared_router_encoder
from genfoundry.services.fine_tuning.method import FineTuningMethod, check_ready

CLASSIFIER_KIND = "fine_tune_classifier"
ENCODER_FAMILY = "encoder"  # the family the methods listing gives the router's sentence encoder
# Hyperparameters of the image recipes that mean nothing to a logistic-regression head fit to convergence.
_UNUSED_HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier", "learning_rate")


class ClassifierMethod(FineTuningMethod):
    """A prompt classifier: a logistic-regression head on the router's encoder, for /v1/classify."""

    name: ClassVar[str] = "classifier"
    kind: ClassVar[str] = CLASSIFIER_KIND
    resumable: ClassVar[bool] = False  # a head trains in seconds: a failed run starts again
    hyperparameters_model: ClassVar[type[BaseModel]] = ClassifierHyperparameters
    dataset: ClassVar[str] = "classification"

    def bases(self, owner_id: str) -> list[tuple[str, str]]:
        return [(ENCODER_ID, ENCODER_FAMILY)]

    def defaults(self) -> dict[str, dict[str, Any]]:
        from genfoundry.router.train import ClassifierTrainingConfig

        config = ClassifierTrainingConfig()
        values = {"c": "auto" if config.c is None else config.c, "validation_fraction": config.validation_fraction}
        return {ENCODER_FAMILY: {name: values.get(name) for name in self.hyperparameters_model.model_fields}}

    def config(self, hyperparameters: dict[str, Any]) -> Any:
        from genfoundry.router.train import ClassifierTrainingConfig

        fields: dict[str, Any] = {"seed": int(hyperparameters.get("seed", 0))}
        if hyperparameters.get("c") not in (None, "auto"):
            fields["c"] = float(hyperparameters["c"])
        if hyperparameters.get("validation_fraction") is not None:
            fields["validation_fraction"] = float(hyperparameters["validation_fraction"])
        try:
            return ClassifierTrainingConfig(**fields)
        except ValueError as exc:
            raise Invalid(str(exc), param="hyperparameters") from None

    def validate(self, session: Session, owner_id: str, body: FineTuningJobCreate) -> dict[str, Any]:
        """Check the request and the dataset (labels and their counts) now."""
        from genfoundry.router.train import check_labels, read_examples

        if body.model not in ENCODER_ALIASES and body.model != ROUTER_MODEL_ID:
            raise NotFound(
                f"The model '{body.model}' cannot be fine-tuned as a classifier; use '{ENCODER_ID}'", param="model"
            )
        hyper = body.classifier_settings().model_dump(exclude_none=True)
        for name in _UNUSED_HYPERPARAMETERS:
            if hyper.get(name, "auto") != "auto":
                raise Invalid(
                    f"{name} does not apply to a classifier: its logistic-regression head is fit to convergence; "
                    "set c, or leave it 'auto' to choose it on the validation split",
                    param=name,
                )
        seed = body.seed or 0
        config = self.config({**hyper, "seed": seed})
        dataset = self.owned_dataset(session, owner_id, body.training_file, param="training_file")
        if dataset.kind != "text":
            raise Invalid(
                'a classifier trains on a JSONL file of {"text", "label"} lines; this dataset holds images',
                param="training_file",
            )
        if dataset.text_format != "classification":
            raise Invalid(
                f'a classifier trains on {{"text", "label"}} lines; this file is {dataset.text_format}',
                param="training_file",
            )
        check_ready(dataset)
        check_labels(read_examples(self.dataset_file(dataset.id)), config)
        return {
            "method": self.name,
            "base_id": ENCODER_ID,
            "dataset_id": dataset.id,
            "suffix": body.suffix,
            "hyperparameters": {
                "c": config.c if config.c is not None else "auto",
                "validation_fraction": config.validation_fraction,
                "seed": seed,
            },
        }

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Train, store the head, register the classifier."""
        from genfoundry.router.train import train_classifier
        from genfoundry.training.callbacks import TrainingCallbacks

        env, params = self.env, ctx.params
        with env.sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=ctx.job_id)
            existing = classifiers_repo.find_by_job(session=session, job_id=ctx.job_id)
            dataset = datasets_repo.get_dataset(session=session, dataset_id=params["dataset_id"])
        if existing is not None:  # an earlier attempt registered it and died before its final write
            return {"fine_tuned_model": existing.id, **existing.metrics}
        if dataset is None or job is None:
            raise NotFound("the training dataset was deleted")
        config = self.config(params["hyperparameters"])

        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            ctx.progress(step, total)
            if metrics:
                ctx.metrics(step, **metrics)

        output_dir = self.work_dir / ctx.job_id
        shutil.rmtree(output_dir, ignore_errors=True)
        result = train_classifier(
            config,
            self.dataset_file(dataset.id),
            output_dir,
            TrainingCallbacks(on_step=on_step, should_stop=ctx.cancel_requested, on_log=ctx.log),
            encoder=shared_router_encoder(env),
            meta={"job": ctx.job_id, "dataset": dataset.id},
        )
        if result.stopped or result.head is None:
            ctx.check_cancelled()
            raise Conflict("training stopped before the end")
        classifier_id = new_id("clf")
        prefix = classifier_prefix(classifier_id)
        for name in (HEAD_WEIGHTS, HEAD_META):
            env.store.put_file(f"{prefix}/{name}", output_dir / name)
        shutil.rmtree(output_dir, ignore_errors=True)
        metrics = {
            "validation_accuracy": round(result.validation["accuracy"], 6),
            "validation_macro_f1": round(result.validation["macro_f1"], 6),
        }
        name = "-".join(part for part in ("classifier", params.get("suffix")) if part)
        with env.sessions() as session:
            classifiers_repo.create_classifier(
                session=session,
                id=classifier_id,
                owner_id=job.owner_id,
                name=slug(name),
                encoder=ENCODER_ID,
                labels=list(result.head.labels),
                metrics={**metrics, "examples": sum(result.label_counts.values())},
                job_id=ctx.job_id,
            )
            session.commit()
        return {"fine_tuned_model": classifier_id, "labels": list(result.head.labels), **metrics}
