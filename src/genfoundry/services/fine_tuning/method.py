"""One way to fine-tune (OpenAI's `method.type`): it checks a request into a job's parameters, then runs the job."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from genfoundry.db.tables import Dataset
from genfoundry.errors import Conflict, Invalid
from genfoundry.jobs.context import JobContext
from genfoundry.jobs.env import JobEnv
from genfoundry.repo import datasets as datasets_repo
from genfoundry.schemas import FineTuningJobCreate
from genfoundry.services.datasets import dataset_prefix


class FineTuningMethod(ABC):
    """A method is built over a `JobEnv` in whichever process needs it: the server to validate, the job's own
    process to run. Its job parameters are JSON as stored: `method`, `base_id`, `dataset_id`, `suffix`,
    `hyperparameters` (what the recipe's config is built from, checked at validation) and the method's own."""

    name: ClassVar[str]  # `method.type`
    kind: ClassVar[str]  # the job kind its runs are stored as
    resumable: ClassVar[bool] = True  # a cancelled or failed run can go on from its last checkpoint
    hyperparameters_model: ClassVar[type[BaseModel]]  # what `method.<name>.hyperparameters` takes
    dataset: ClassVar[str]  # what `training_file` holds: "image", "text" (SFT lines) or "classification"
    takes_validation_file: ClassVar[bool] = False  # whether `validation_file` (a dataset like training_file) is read

    def __init__(self, env: JobEnv) -> None:
        self.env = env

    @property
    def work_dir(self) -> Path:
        return self.env.settings.home / "training"

    @abstractmethod
    def validate(self, session: Session, owner_id: str, body: FineTuningJobCreate) -> dict[str, Any]:
        """Check the base, the data and every hyperparameter (a 4xx naming the field otherwise); the job's params."""

    @abstractmethod
    def bases(self, owner_id: str) -> list[tuple[str, str]]:
        """(id, family) of every model this method can fine-tune for `owner_id`."""

    @abstractmethod
    def defaults(self) -> dict[str, dict[str, Any]]:
        """Family → each hyperparameter's value when it is left out (None: no value, or "auto")."""

    @abstractmethod
    def run(self, ctx: JobContext) -> dict[str, Any]:
        """The job, in its own process: train from `ctx.params`, register what it made; its `fine_tuned_model`."""

    def owned_dataset(self, session: Session, owner_id: str, dataset_id: str, *, param: str) -> Dataset:
        """The caller's dataset; another user's is NotFound."""
        return datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id, param=param)

    def dataset_file(self, dataset_id: str) -> Path:
        """A text dataset's JSONL file, local."""
        return self.env.store.local_path(f"{dataset_prefix(dataset_id)}/data.jsonl")


def check_ready(dataset: Dataset) -> None:
    """Conflict while a job (download, captioning) still works on the dataset."""
    if dataset.status != "ready":
        raise Conflict(f"dataset {dataset.id} is {dataset.status}; train on it when it is ready")


def without_auto(hyperparameters: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """OpenAI's "auto" means the recipe's default: leave the field out."""
    return {k: v for k, v in hyperparameters.items() if not (k in names and v == "auto")}


def scaled_learning_rate(hyperparameters: dict[str, Any], default: float) -> dict[str, Any]:
    """OpenAI's learning_rate_multiplier, as a learning_rate: the multiplier times the given or default rate."""
    merged = dict(hyperparameters)
    multiplier = merged.pop("learning_rate_multiplier", None)
    if multiplier is not None:
        if not 0 < float(multiplier) <= 100:
            raise Invalid(
                "learning_rate_multiplier must be greater than 0 and at most 100", param="learning_rate_multiplier"
            )
        merged["learning_rate"] = float(merged.get("learning_rate", default)) * float(multiplier)
    return merged


def json_value(value: object) -> Any:
    """A config field as JSON (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value
