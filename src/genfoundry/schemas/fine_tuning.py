"""Fine-tuning jobs (OpenAI's shapes): methods with their hyperparameters, jobs, events, checkpoints.

Each hyperparameter field carries its one-line description and the range its recipe checks (`hyper`): they are
what /openapi.json and GET /v1/fine_tuning/methods tell clients (the studio builds its training form from them).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genfoundry.schemas.common import FINITE, Seed


def hyper(
    description: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    **field: Any,
) -> Any:
    """A hyperparameter field: what it does in one line and the range the recipe checks. The recipe's config
    enforces the range (its 400 names the field); here it is documentation, under `x-choices` for strings."""
    extra: dict[str, Any] = {}
    if minimum is not None:
        extra["minimum"] = minimum
    if maximum is not None:
        extra["maximum"] = maximum
    if choices is not None:
        extra["x-choices"] = list(choices)
    return Field(default=None, description=description, json_schema_extra=extra or None, **field)


_MAX_STEPS = 100_000  # the image recipes' cap (training/config.py)
_MAX_SFT_STEPS = 1_000_000  # the SFT recipe's (training/sft_config.py)


class ImageTrainingHyperparameters(BaseModel):
    """OpenAI's names where they fit (n_epochs, batch_size, learning_rate_multiplier) plus ours."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] | None = hyper(
        "Passes over the dataset; set this or max_steps, not both (neither: the family's max_steps).",
        minimum=1,
        maximum=10_000,
    )
    batch_size: int | Literal["auto"] | None = hyper("Images per optimizer micro-batch.", minimum=1, maximum=64)
    learning_rate_multiplier: float | Literal["auto"] | None = hyper(
        "Scales the learning rate (greater than 0).", minimum=0, maximum=100
    )
    max_steps: int | None = hyper("Optimizer steps to train for.", minimum=1, maximum=_MAX_STEPS)
    learning_rate: float | None = hyper("AdamW step size (greater than 0).", minimum=0, maximum=1)
    rank: int | None = hyper(
        "LoRA rank: capacity of the adapter (higher learns more, files grow).", minimum=1, maximum=256
    )
    alpha: float | None = hyper("LoRA scale numerator; defaults to the rank (scale 1).", minimum=0, maximum=4096)
    resolution: int | None = hyper(
        "Training image side in pixels (a multiple of 8; of 16 for FLUX).", minimum=64, maximum=4096
    )
    gradient_accumulation_steps: int | None = hyper(
        "Micro-batches summed per optimizer step (a larger effective batch).", minimum=1, maximum=1024
    )
    trigger_word: str | None = hyper(
        "Word put in front of every caption; use it in prompts to call the subject up.", max_length=200
    )
    validation_prompts: list[str] | None = hyper(
        "Prompts sampled at every sample step, on fixed seeds, to watch training.", max_length=8
    )
    sample_every_n_steps: int | None = hyper(
        "Steps between sample images of the validation prompts (0: never).", minimum=0, maximum=_MAX_STEPS
    )
    checkpoint_every_n_steps: int | None = hyper(
        "Steps between checkpoints; each becomes an adapter you can try.", minimum=1, maximum=_MAX_STEPS
    )
    save_every_n_epochs: int | None = hyper(
        "Epochs between checkpoints, besides checkpoint_every_n_steps (0: none).", minimum=0, maximum=10_000
    )
    optimizer: str | None = hyper(
        "adamw, or adamw8bit: AdamW with 8-bit states from bitsandbytes (less memory).",
        choices=("adamw", "adamw8bit"),
        max_length=20,
    )
    mixed_precision: str | None = hyper(
        "Compute precision: no (float32), fp16 or bf16 (a CUDA GPU); auto picks the device's best.",
        choices=("auto", "no", "fp16", "bf16"),
        max_length=10,
    )
    gradient_checkpointing: bool | None = hyper("Recompute activations in the backward pass: less memory, slower.")
    bucketing: bool | None = hyper("Group images into aspect-ratio buckets; off, each is center-cropped square.")
    train_text_encoder: bool | None = hyper("Train LoRA layers on the text encoder(s) too (SD 1.5 and SDXL).")


class MethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: ImageTrainingHyperparameters = Field(default_factory=ImageTrainingHyperparameters)


class DreamBoothHyperparameters(ImageTrainingHyperparameters):
    """The LoRA names plus DreamBooth's: instance prompt, prior preservation with class images, LoRA or full."""

    train_mode: str | None = hyper(
        "lora trains an adapter; full trains the whole UNet (SD 1.5 / SDXL).", choices=("lora", "full"), max_length=20
    )
    instance_prompt: str | None = hyper("The prompt every training image is learned with.", max_length=1000)
    class_word: str | None = hyper(
        "What the subject is (dog, sneaker): the instance prompt becomes 'a photo of <trigger> <class>'.",
        max_length=100,
    )
    class_prompt: str | None = hyper("Prompt of the generated class images (prior preservation).", max_length=1000)
    with_prior_preservation: bool | None = hyper("Train on generated class images too, so the class is not forgotten.")
    num_class_images: int | None = hyper("Class images generated for prior preservation.", minimum=1, maximum=10_000)
    prior_loss_weight: float | None = hyper("Weight of the class images' loss.", minimum=0, maximum=100)
    class_image_steps: int | None = hyper("Denoising steps per generated class image.", minimum=1, maximum=200)


class DreamBoothMethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: DreamBoothHyperparameters = Field(default_factory=DreamBoothHyperparameters)


class ClassifierHyperparameters(BaseModel):
    """A custom prompt classifier (method.type "classifier"); OpenAI's names where they fit."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] | None = hyper("Unused: the head is fit to convergence (leave auto).")
    batch_size: int | Literal["auto"] | None = hyper("Unused: the head is fit to convergence (leave auto).")
    learning_rate_multiplier: float | Literal["auto"] | None = hyper("Unused (leave auto).")
    learning_rate: float | None = hyper("Unused (leave empty).")
    # The logistic-regression head: inverse L2 strength ("auto": chosen on the validation split) and that split.
    c: Annotated[float, Field(gt=0, le=1e6), FINITE] | Literal["auto"] | None = hyper(
        "Inverse regularization strength of the head; auto picks it on the validation split.", minimum=0, maximum=1e6
    )
    validation_fraction: Annotated[float, Field(ge=0.05, le=0.45), FINITE] | None = hyper(
        "Share of the examples held out to measure accuracy.", minimum=0.05, maximum=0.45
    )


class ClassifierMethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: ClassifierHyperparameters = Field(default_factory=ClassifierHyperparameters)


class SftHyperparameters(BaseModel):
    """Supervised fine-tuning of a text model (method.type "supervised", alias "sft"): LoRA, or QLoRA with
    quantization "4bit".

    OpenAI's names (n_epochs, batch_size, learning_rate_multiplier) plus ours; ranges are checked by the recipe's
    config, which names the field."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] | None = hyper(
        "Passes over the dataset; set this or max_steps, not both.", minimum=1, maximum=1000
    )
    batch_size: int | Literal["auto"] | None = hyper("Examples per optimizer micro-batch.", minimum=1, maximum=256)
    learning_rate_multiplier: float | Literal["auto"] | None = hyper(
        "Scales the learning rate (greater than 0).", minimum=0, maximum=100
    )
    max_steps: int | None = hyper("Optimizer steps to train for.", minimum=1, maximum=_MAX_SFT_STEPS)
    learning_rate: float | None = hyper("AdamW step size (greater than 0).", minimum=0, maximum=1)
    rank: int | None = hyper("LoRA rank: capacity of the adapter.", minimum=1, maximum=512)
    alpha: float | None = hyper("LoRA scale numerator; defaults to twice the rank.", minimum=0, maximum=4096)
    lora_dropout: float | None = hyper("Dropout on the LoRA layers' input.", minimum=0, maximum=0.9)
    target_modules: list[str] | None = hyper(
        'Layers that get a LoRA; ["all-linear"] (the default) is every linear layer.', max_length=64
    )
    max_seq_length: int | None = hyper("Tokens per example; longer ones are cut.", minimum=16, maximum=131_072)
    packing: bool | None = hyper("Pack several short examples into one sequence.")
    quantization: str | None = hyper(
        "4bit trains QLoRA over 4-bit weights (needs bitsandbytes).", choices=("none", "4bit")
    )
    gradient_accumulation_steps: int | None = hyper(
        "Micro-batches summed per optimizer step (a larger effective batch).", minimum=1, maximum=1024
    )
    validation_fraction: float | None = hyper(
        "Share of the examples held out for eval loss and token accuracy.", minimum=0, maximum=0.5
    )
    checkpoint_every_n_steps: int | None = hyper(
        "Steps between checkpoints; each becomes an adapter you can chat with.", minimum=1, maximum=_MAX_SFT_STEPS
    )
    eval_every_n_steps: int | None = hyper(
        "Steps between evaluations on the held-out split (0: only at the end).", minimum=0, maximum=_MAX_SFT_STEPS
    )


class SftMethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: SftHyperparameters = Field(default_factory=SftHyperparameters)


SUPERVISED: Final = "supervised"  # OpenAI's name for supervised fine-tuning of a text model
SFT_ALIAS: Final = "sft"  # our earlier name for it, still accepted; jobs report "supervised"


class FineTuningMethod(BaseModel):
    """`type` picks the method; its settings go under the key of the same name (`sft` ones with the alias)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["lora", "dreambooth", "classifier", "supervised", "sft"]
    lora: MethodSettings | None = None
    dreambooth: DreamBoothMethodSettings | None = None
    classifier: ClassifierMethodSettings | None = None
    supervised: SftMethodSettings | None = None
    sft: SftMethodSettings | None = Field(default=None, description="the alias of supervised")

    @model_validator(mode="after")
    def _sft_is_supervised(self) -> FineTuningMethod:
        """The alias becomes OpenAI's name, so everything past the request sees one method."""
        if self.sft is not None and self.supervised is not None:
            raise ValueError("method.sft is the alias of method.supervised: set one of them")
        if self.type == SFT_ALIAS:
            self.type = SUPERVISED
        if self.sft is not None:
            self.supervised, self.sft = self.sft, None
        return self

    def settings(self) -> ImageTrainingHyperparameters:
        """The image recipes' hyperparameters (lora, dreambooth)."""
        chosen = getattr(self, self.type) if self.type in ("lora", "dreambooth") else None
        return chosen.hyperparameters if chosen is not None else ImageTrainingHyperparameters()

    def classifier_settings(self) -> ClassifierHyperparameters:
        return self.classifier.hyperparameters if self.classifier is not None else ClassifierHyperparameters()

    def sft_settings(self) -> SftHyperparameters:
        return self.supervised.hyperparameters if self.supervised is not None else SftHyperparameters()


class FineTuningJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=120)
    training_file: str = Field(min_length=1, max_length=64)
    suffix: str | None = Field(default=None, max_length=64)
    seed: Seed | None = None
    # None (the openai CLI, older SDKs): the base's own method, supervised for a text base, lora for an image base.
    method: FineTuningMethod | None = None
    hyperparameters: ImageTrainingHyperparameters | None = None
    validation_file: str | None = None
    metadata: dict[str, str] | None = None

    # The method's settings; defaults when `method` (or its settings) was left out.
    def image_settings(self) -> ImageTrainingHyperparameters:
        return self.method.settings() if self.method is not None else ImageTrainingHyperparameters()

    def sft_settings(self) -> SftHyperparameters:
        return self.method.sft_settings() if self.method is not None else SftHyperparameters()

    def classifier_settings(self) -> ClassifierHyperparameters:
        return self.method.classifier_settings() if self.method is not None else ClassifierHyperparameters()


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


class HyperparameterPublic(BaseModel):
    """One hyperparameter a method takes: its type, one-line description, range and default per family."""

    name: str
    type: Literal["integer", "number", "boolean", "string", "array"]
    description: str
    auto: bool = False  # "auto" is accepted (the recipe's default)
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None  # characters of a string, entries of an array
    choices: list[str] | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)  # family → the value used when it is left out


class FineTuningBasePublic(BaseModel):
    id: str
    family: str


class FineTuningMethodPublic(BaseModel):
    """A fine-tuning method (`method.type`) as the server's registry has it."""

    id: str
    object: Literal["fine_tuning.method"] = "fine_tuning.method"
    description: str
    dataset: Literal["image", "text", "classification"]  # what `training_file` must hold
    validation_file: bool  # whether the method reads a `validation_file` (a dataset of the same kind)
    resumable: bool
    families: list[str]
    bases: list[FineTuningBasePublic]
    hyperparameters: list[HyperparameterPublic]


class CheckpointPromote(BaseModel):
    """Keep a checkpoint as a model of its own, under a name of the caller's choosing."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    trigger_word: str | None = Field(default=None, max_length=200)
