"""Fine-tuning jobs (OpenAI's shapes): methods with their hyperparameters, jobs, events, checkpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genfoundry.schemas.common import FINITE, Seed


class ImageTrainingHyperparameters(BaseModel):
    """OpenAI's names where they fit (n_epochs, batch_size, learning_rate_multiplier) plus ours."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] | None = None
    batch_size: int | Literal["auto"] | None = None
    learning_rate_multiplier: float | Literal["auto"] | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    rank: int | None = None
    alpha: float | None = None
    resolution: int | None = None
    gradient_accumulation_steps: int | None = None
    trigger_word: str | None = Field(default=None, max_length=200)
    validation_prompts: list[str] | None = Field(default=None, max_length=8)
    sample_every_n_steps: int | None = None
    checkpoint_every_n_steps: int | None = None


class MethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: ImageTrainingHyperparameters = Field(default_factory=ImageTrainingHyperparameters)


class DreamBoothHyperparameters(ImageTrainingHyperparameters):
    """The LoRA names plus DreamBooth's: instance prompt, prior preservation with class images, LoRA or full."""

    train_mode: str | None = Field(default=None, max_length=20)  # "lora" (default) or "full" (the whole UNet)
    instance_prompt: str | None = Field(default=None, max_length=1000)
    class_word: str | None = Field(default=None, max_length=100)
    class_prompt: str | None = Field(default=None, max_length=1000)
    with_prior_preservation: bool | None = None
    num_class_images: int | None = None
    prior_loss_weight: float | None = None
    class_image_steps: int | None = None


class DreamBoothMethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: DreamBoothHyperparameters = Field(default_factory=DreamBoothHyperparameters)


class ClassifierHyperparameters(BaseModel):
    """A custom prompt classifier (method.type "classifier"); OpenAI's names where they fit."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] | None = None
    batch_size: int | Literal["auto"] | None = None
    learning_rate_multiplier: float | Literal["auto"] | None = None
    learning_rate: float | None = None
    # The logistic-regression head: inverse L2 strength ("auto": chosen on the validation split) and that split.
    c: Annotated[float, Field(gt=0, le=1e6), FINITE] | Literal["auto"] | None = None
    validation_fraction: Annotated[float, Field(ge=0.05, le=0.45), FINITE] | None = None


class ClassifierMethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: ClassifierHyperparameters = Field(default_factory=ClassifierHyperparameters)


class SftHyperparameters(BaseModel):
    """Supervised fine-tuning of a text model (method.type "sft"): LoRA, or QLoRA with quantization "4bit".

    OpenAI's names where they fit; ranges are checked by the recipe's config, which names the field."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] | None = None
    batch_size: int | Literal["auto"] | None = None
    learning_rate_multiplier: float | Literal["auto"] | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    rank: int | None = None
    alpha: float | None = None
    lora_dropout: float | None = None
    target_modules: list[str] | None = Field(default=None, max_length=64)  # or ["all-linear"], the default
    max_seq_length: int | None = None
    packing: bool | None = None
    quantization: str | None = None  # "none" | "4bit"
    gradient_accumulation_steps: int | None = None
    validation_fraction: float | None = None
    checkpoint_every_n_steps: int | None = None
    eval_every_n_steps: int | None = None


class SftMethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: SftHyperparameters = Field(default_factory=SftHyperparameters)


class FineTuningMethod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["lora", "dreambooth", "classifier", "sft"]
    lora: MethodSettings | None = None
    dreambooth: DreamBoothMethodSettings | None = None
    classifier: ClassifierMethodSettings | None = None
    sft: SftMethodSettings | None = None

    def settings(self) -> ImageTrainingHyperparameters:
        """The image recipes' hyperparameters (lora, dreambooth)."""
        chosen = getattr(self, self.type) if self.type in ("lora", "dreambooth") else None
        return chosen.hyperparameters if chosen is not None else ImageTrainingHyperparameters()

    def classifier_settings(self) -> ClassifierHyperparameters:
        return self.classifier.hyperparameters if self.classifier is not None else ClassifierHyperparameters()

    def sft_settings(self) -> SftHyperparameters:
        return self.sft.hyperparameters if self.sft is not None else SftHyperparameters()


class FineTuningJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=120)
    training_file: str = Field(min_length=1, max_length=64)
    suffix: str | None = Field(default=None, max_length=64)
    seed: Seed | None = None
    method: FineTuningMethod = Field(default_factory=lambda: FineTuningMethod(type="lora"))
    hyperparameters: ImageTrainingHyperparameters | None = None
    validation_file: str | None = None
    metadata: dict[str, str] | None = None


class FineTuningError(BaseModel):
    code: str
    message: str
    param: str | None = None


class FineTuningJobPublic(BaseModel):
    """OpenAI's fine_tuning.job object plus `progress` and our fields."""

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    finished_at: int | None
    model: str
    fine_tuned_model: str | None
    organization_id: str = "genfoundry"
    result_files: list[str] = Field(default_factory=list)
    status: Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
    validation_file: str | None = None
    training_file: str
    hyperparameters: dict[str, Any]
    method: dict[str, Any]
    trained_tokens: int | None = None
    error: FineTuningError | None = None
    seed: int
    estimated_finish: int | None = None
    user_provided_suffix: str | None = None
    metadata: dict[str, str] | None = None
    integrations: list[Any] = Field(default_factory=list)
    progress: dict[str, int] = Field(default_factory=dict)


class FineTuningEventPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"] = "info"
    message: str
    type: Literal["message", "metrics"] = "message"
    data: dict[str, Any] = Field(default_factory=dict)


class FineTuningCheckpointPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str | None  # an adapter id; None for a full fine-tune's checkpoint
    fine_tuning_job_id: str
    metrics: dict[str, float] = Field(default_factory=dict)
    step_number: int
