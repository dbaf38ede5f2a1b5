"""Prompt classification and routing (the shipped router or a caller's own classifier), and custom classifier
jobs: checked and queued here, trained by the job runner in their own process, registered per owner."""

from __future__ import annotations

import logging
import shutil
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from genfoundry.config import RouterSettings
from genfoundry.db.tables import Classifier, Job
from genfoundry.errors import Conflict, Invalid, NotFound, TooLarge
from genfoundry.jobs.runner import JobContext, JobRunner
from genfoundry.repo import classifiers as classifiers_repo
from genfoundry.repo import datasets as datasets_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import new_id, slug
from genfoundry.router.encoder import ENCODER_ALIASES, ENCODER_ID, TextEncoder
from genfoundry.router.head import HEAD_META, HEAD_WEIGHTS, ClassifierHead, Prediction, default_head_dir, load_head
from genfoundry.schemas import FineTuningJobCreate, RouteMessage
from genfoundry.services.datasets import DatasetService, dataset_prefix
from genfoundry.storage import ArtifactStore

logger = logging.getLogger(__name__)

ROUTER_MODEL_ID = "router-default"
CLASSIFIER_KIND = "fine_tune_classifier"
# Hyperparameters of the image recipes that mean nothing to a logistic-regression head fit to convergence.
_UNUSED_HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier", "learning_rate")


@dataclass(frozen=True)
class Classification:
    model: str
    predictions: list[Prediction]


@dataclass(frozen=True)
class RouteDecision:
    model: str
    prediction: Prediction
    message_index: int


def classifier_prefix(classifier_id: str) -> str:
    return f"classifiers/{classifier_id}"


def as_route_message(message: object) -> RouteMessage:
    """A chat message from another schema (or a plain dict) in the router's shape."""
    if isinstance(message, RouteMessage):
        return message
    if isinstance(message, BaseModel):
        message = message.model_dump()
    try:
        return RouteMessage.model_validate(message)
    except ValidationError as exc:
        raise Invalid(f"not a chat message: {exc.errors()[0]['msg']}", param="messages") from None


def last_user_text(messages: Sequence[object]) -> tuple[int, str]:
    """Index and text of the last user message (text parts joined); Invalid when there is none."""
    for index in range(len(messages) - 1, -1, -1):
        message = as_route_message(messages[index])
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            text = message.content
        elif message.content is None:
            text = ""
        else:
            text = "\n".join(part.text for part in message.content if part.text)
        if not text.strip():
            raise Invalid(f"messages[{index}], the last user message, has no text to route", param="messages")
        return index, text
    raise Invalid("messages has no user message to route", param="messages")


class ClassifierService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ArtifactStore,
        settings: RouterSettings,
        datasets: DatasetService,
        jobs: JobRunner,
        work_dir: Path,
        device: str = "cpu",
        encoder: TextEncoder | None = None,
        encoder_cache_dir: Path | None = None,
        head_dir: Path | None = None,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.settings = settings
        self.datasets = datasets
        self.jobs = jobs
        self.work_dir = work_dir
        backend = settings.encoder_backend
        if backend == "auto":
            backend = "onnx" if device == "cpu" else "torch"
        self.encoder = encoder or TextEncoder(
            device=device, threads=settings.encoder_threads, backend=backend, cache_dir=encoder_cache_dir
        )
        self.head_dir = head_dir or default_head_dir()
        self._default: ClassifierHead | None = None
        self._tuned: dict[Path, TextEncoder] = {}  # encoders with a head's LoRA merged in, one per LoRA file
        self._heads: OrderedDict[str, ClassifierHead] = OrderedDict()
        self._lock = threading.Lock()

    def register(self, runner: JobRunner) -> None:
        runner.register(CLASSIFIER_KIND, self.run)

    def preload(self) -> None:
        """Load the shipped router's head and encoder on a background thread (the server calls it at start), so
        the first routed message does not wait for it; a failure is logged and left to the first request."""

        def load() -> None:
            try:
                self.encoder_for(self.default_head()).load()
            except Exception:
                logger.exception("preloading the prompt router failed; it will load on first use")

        threading.Thread(target=load, name="router-preload", daemon=True).start()

    # -- heads -------------------------------------------------------------------------------------

    def default_head(self) -> ClassifierHead:
        with self._lock:
            if self._default is None:
                self._default = load_head(self.head_dir)
            return self._default

    def _custom_head(self, classifier: Classifier) -> ClassifierHead:
        with self._lock:
            head = self._heads.get(classifier.id)
            if head is not None:
                self._heads.move_to_end(classifier.id)
                return head
        prefix = classifier_prefix(classifier.id)
        self.store.local_path(f"{prefix}/{HEAD_WEIGHTS}")
        head = load_head(self.store.local_path(f"{prefix}/{HEAD_META}").parent)
        with self._lock:
            self._heads[classifier.id] = head
            while len(self._heads) > self.settings.max_loaded_heads:
                self._heads.popitem(last=False)
        return head

    def encoder_for(self, head: ClassifierHead) -> TextEncoder:
        """The shared encoder, or for a head trained on a tuned encoder, that encoder (built once, kept)."""
        if head.encoder_lora is None:
            return self.encoder
        with self._lock:
            key = head.encoder_lora.path.resolve()
            if key not in self._tuned:
                self._tuned[key] = TextEncoder(
                    self.encoder.model_dir,
                    lora=head.encoder_lora,
                    device=self.encoder.device,
                    threads=self.encoder.threads,
                    backend=self.encoder.backend,
                    cache_dir=self.encoder.cache_dir,
                )
            return self._tuned[key]

    def head_for(self, owner_id: str, model: str | None) -> tuple[str, ClassifierHead]:
        """The model id and head for `model` (None: the shipped router); another user's classifier is a 404."""
        if model is None or model == ROUTER_MODEL_ID:
            return ROUTER_MODEL_ID, self.default_head()
        with self.sessions() as session:
            classifier = classifiers_repo.require_classifier(session=session, owner_id=owner_id, classifier_id=model)
        return classifier.id, self._custom_head(classifier)

    # -- classify and route ------------------------------------------------------------------------

    def classify(self, owner_id: str, inputs: Sequence[str], model: str | None = None) -> Classification:
        """Label and per-label scores for every text; the list is encoded in one batch."""
        if not inputs:
            raise Invalid("input must list at least one text", param="input")
        cap = self.settings.max_inputs
        if len(inputs) > cap:
            raise TooLarge(f"input lists {len(inputs)} texts; at most {cap} per request", param="input")
        for index, text in enumerate(inputs):
            if not text.strip():
                raise Invalid(f"input[{index}] is empty or only whitespace", param="input")
        model_id, head = self.head_for(owner_id, model)
        # One forward pass for the whole request (at most max_inputs texts).
        embeddings = self.encoder_for(head).encode(list(inputs), batch_size=len(inputs))
        return Classification(model_id, head.predict(embeddings, ambiguity_margin=self.settings.ambiguity_margin))

    def route(self, owner_id: str, messages: Sequence[object], model: str | None = None) -> RouteDecision:
        """Which capability (the router's label) answers the last user message; `messages` are RouteMessage,
        another chat-message model or dicts with `role` and `content` (a string or content parts)."""
        index, text = last_user_text(messages)
        result = self.classify(owner_id, [text], model)
        return RouteDecision(result.model, result.predictions[0], index)

    # -- the registry ------------------------------------------------------------------------------

    def list_models(self, owner_id: str) -> list[Classifier]:
        with self.sessions() as session:
            return classifiers_repo.list_classifiers(session=session, owner_id=owner_id)

    def get(self, owner_id: str, classifier_id: str) -> Classifier | None:
        with self.sessions() as session:
            return classifiers_repo.get_classifier(session=session, owner_id=owner_id, classifier_id=classifier_id)

    def delete(self, *, owner_id: str, classifier_id: str) -> None:
        with self.sessions() as session:
            classifier = classifiers_repo.require_classifier(
                session=session, owner_id=owner_id, classifier_id=classifier_id
            )
            classifiers_repo.delete_classifier(session=session, classifier=classifier)
            session.commit()
        with self._lock:
            self._heads.pop(classifier_id, None)
        self.store.delete(classifier_prefix(classifier_id))

    # -- custom classifier jobs --------------------------------------------------------------------

    def _config(self, hyperparameters: dict[str, Any], seed: int) -> Any:
        from genfoundry.router.train import ClassifierTrainingConfig

        fields: dict[str, Any] = {"seed": seed}
        if hyperparameters.get("c") not in (None, "auto"):
            fields["c"] = float(hyperparameters["c"])
        if hyperparameters.get("validation_fraction") is not None:
            fields["validation_fraction"] = float(hyperparameters["validation_fraction"])
        try:
            return ClassifierTrainingConfig(**fields)
        except ValueError as exc:
            raise Invalid(str(exc), param="hyperparameters") from None

    def create_job(self, *, owner_id: str, body: FineTuningJobCreate) -> Job:
        """Check the request and the dataset (labels and their counts) now; queue the training."""
        from genfoundry.router.train import check_labels, read_examples

        if body.model not in ENCODER_ALIASES and body.model != ROUTER_MODEL_ID:
            raise NotFound(
                f"The model '{body.model}' cannot be fine-tuned as a classifier; use '{ENCODER_ID}'", param="model"
            )
        hyper = body.method.classifier_settings().model_dump(exclude_none=True)
        for name in _UNUSED_HYPERPARAMETERS:
            if hyper.get(name, "auto") != "auto":
                raise Invalid(
                    f"{name} does not apply to a classifier: its logistic-regression head is fit to convergence; "
                    "set c, or leave it 'auto' to choose it on the validation split",
                    param=name,
                )
        seed = body.seed or 0
        config = self._config(hyper, seed)
        with self.sessions() as session:
            dataset = datasets_repo.require_dataset(
                session=session, owner_id=owner_id, dataset_id=body.training_file, param="training_file"
            )
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
            if dataset.status != "ready":
                raise Conflict(f"dataset {dataset.id} is {dataset.status}; train on it when it is ready")
            check_labels(read_examples(self._dataset_file(dataset.id)), config)
            job = self.jobs.submit(
                session=session,
                owner_id=owner_id,
                kind=CLASSIFIER_KIND,
                params={
                    "method": "classifier",
                    "base_id": ENCODER_ID,
                    "dataset_id": dataset.id,
                    "suffix": body.suffix,
                    "hyperparameters": {
                        "c": config.c if config.c is not None else "auto",
                        "validation_fraction": config.validation_fraction,
                        "seed": seed,
                    },
                },
            )
            session.commit()
        self.jobs.start(job)
        return job

    def _dataset_file(self, dataset_id: str) -> Path:
        return self.store.local_path(f"{dataset_prefix(dataset_id)}/data.jsonl")

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """The job function, in the job's own process: train, store the head, register the classifier."""
        from genfoundry.router.train import train_classifier
        from genfoundry.training.callbacks import TrainingCallbacks

        params = ctx.params
        with self.sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=ctx.job_id)
            existing = classifiers_repo.find_by_job(session=session, job_id=ctx.job_id)
            dataset = datasets_repo.get_dataset(session=session, dataset_id=params["dataset_id"])
        if existing is not None:  # an earlier attempt registered it and died before its final write
            return {"fine_tuned_model": existing.id, **existing.metrics}
        if dataset is None or job is None:
            raise NotFound("the training dataset was deleted")
        hyper = params["hyperparameters"]
        config = self._config(hyper, int(hyper.get("seed", 0)))

        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            ctx.progress(step, total)
            if metrics:
                ctx.metrics(step, **metrics)

        output_dir = self.work_dir / ctx.job_id
        shutil.rmtree(output_dir, ignore_errors=True)
        result = train_classifier(
            config,
            self._dataset_file(dataset.id),
            output_dir,
            TrainingCallbacks(on_step=on_step, should_stop=ctx.cancel_requested, on_log=ctx.log),
            encoder=self.encoder,
            meta={"job": ctx.job_id, "dataset": dataset.id},
        )
        if result.stopped or result.head is None:
            ctx.check_cancelled()
            raise Conflict("training stopped before the end")
        classifier_id = new_id("clf")
        prefix = classifier_prefix(classifier_id)
        for name in (HEAD_WEIGHTS, HEAD_META):
            self.store.put_file(f"{prefix}/{name}", output_dir / name)
        shutil.rmtree(output_dir, ignore_errors=True)
        metrics = {
            "validation_accuracy": round(result.validation["accuracy"], 6),
            "validation_macro_f1": round(result.validation["macro_f1"], 6),
        }
        name = "-".join(part for part in ("classifier", params.get("suffix")) if part)
        with self.sessions() as session:
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
