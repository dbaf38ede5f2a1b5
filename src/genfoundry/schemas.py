"""API models per resource (OpenAI shapes where OpenAI has the endpoint). pydantic only."""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")


class ListPublic(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool = False


class LoraRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=120)
    weight: float = Field(default=1.0, ge=-4.0, le=4.0)

    @field_validator("weight")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("weight must be a finite number")
        return value


class ImageOptions(BaseModel):
    """Fields shared by generations and edits; limits beyond these are checked against settings."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    model: str = Field(min_length=1, max_length=120)
    n: int = Field(default=1, ge=1)
    size: str | None = Field(default=None, examples=["64x64", "1024x1024"])
    response_format: Literal["url", "b64_json"] = "url"
    negative_prompt: str | None = None
    steps: int | None = Field(default=None, ge=1)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=100.0)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    loras: list[LoraRef] = Field(default_factory=list)
    style: str | None = None
    industry: str | None = Field(default=None, max_length=100)
    user: str | None = None

    @field_validator("guidance_scale")
    @classmethod
    def _finite_guidance(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("guidance_scale must be a finite number")
        return value


class ImageGenerationRequest(ImageOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "tiny-sd15",
                    "prompt": "a red fox in the snow",
                    "size": "64x64",
                    "n": 1,
                    "seed": 7,
                    "style": "cinematic",
                    "response_format": "url",
                }
            ]
        },
    )
    # OpenAI fields we accept and ignore because they have no meaning for diffusion models.
    quality: str | None = None
    output_format: Literal["png"] | None = None


class ImagePublic(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str
    id: str
    seed: int
    generation_time_s: float


class ImagesResponse(BaseModel):
    created: int
    data: list[ImagePublic]


class GenerationPublic(BaseModel):
    id: str
    object: Literal["generation"] = "generation"
    created: int
    kind: str
    model: str
    base: str
    prompt: str
    revised_prompt: str
    negative_prompt: str | None
    params: dict[str, Any]
    seed: int
    width: int
    height: int
    url: str
    generation_time_s: float
    favorite: bool
    rating: int | None
    feedback: str | None


class GenerationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    favorite: bool | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    feedback: str | None = Field(default=None, max_length=4000)

    @field_validator("favorite")
    @classmethod
    def _favorite_not_null(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("favorite must be true or false")
        return value


class ModelPublic(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    kind: Literal["base", "adapter", "classifier"]
    family: str
    base: str | None = None
    trigger_word: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    rank: int | None = None
    source_format: str | None = None
    labels: list[str] | None = None  # classifiers: the labels they predict


class DeletedPublic(BaseModel):
    id: str
    object: str
    deleted: bool = True


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    admin: bool = False
    user_id: str | None = Field(default=None, max_length=40)


class ApiKeyPublic(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    user_id: str
    admin: bool
    created: int
    last_used: int | None
    revoked: int | None


class ApiKeyCreated(ApiKeyPublic):
    key: str


class DatasetFromUrls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    urls: list[str] = Field(min_length=1)
    trigger_word: str | None = Field(default=None, max_length=200)


class DatasetPublic(BaseModel):
    id: str
    object: Literal["dataset"] = "dataset"
    name: str
    kind: str
    status: str
    created: int
    trigger_word: str | None
    job_id: str | None
    error: str | None
    stats: dict[str, Any]


class DatasetCreated(DatasetPublic):
    report: dict[str, Any] | None = None


class DatasetItemPublic(BaseModel):
    id: str
    object: Literal["dataset.item"] = "dataset.item"
    source: str
    status: str
    reason: str | None
    sha256: str | None
    width: int | None
    height: int | None
    caption: str | None
    bytes: int
    duplicate_of: str | None


class DatasetItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    caption: str = Field(max_length=4000)


class CaptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=120)
    prompt: str | None = Field(default=None, max_length=500, description="Florence-2 task token or a prompt")
    task: str | None = Field(default=None, max_length=100, description="alias of prompt, e.g. <DETAILED_CAPTION>")
    trigger_word: str | None = Field(default=None, max_length=200)
    overwrite: bool = False
    batch_size: int | None = Field(default=None, ge=1, le=256)


class JobPublic(BaseModel):
    id: str
    object: Literal["job"] = "job"
    kind: str
    status: str
    created: int
    started: int | None
    finished: int | None
    progress: dict[str, int]
    result: dict[str, Any]
    error: str | None


class JobEventPublic(BaseModel):
    id: str
    object: Literal["job.event"] = "job.event"
    created_at: int
    type: str
    message: str
    data: dict[str, Any]


class FilePublic(BaseModel):
    """OpenAI's file object; `id` is the dataset id, usable as `training_file`."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    status_details: str | None = None


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
    c: Annotated[float, Field(gt=0, le=1e6)] | Literal["auto"] | None = None
    validation_fraction: float | None = Field(default=None, ge=0.05, le=0.45)


class ClassifierMethodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: ClassifierHyperparameters = Field(default_factory=ClassifierHyperparameters)


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
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
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


class ClassifyRequest(BaseModel):
    """`input`: one text or a list (encoded in one batch); `model`: the default router or a custom classifier."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"input": ["draw a red fox in the snow", "what is a sequence diagram?"]}]},
    )

    input: str | list[str]
    model: str | None = Field(default=None, min_length=1, max_length=120)

    @field_validator("input", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise ValueError("input must list at least one text")
        for index, text in enumerate(texts):
            where = f"input[{index}]" if isinstance(value, list) else "input"
            if not isinstance(text, str):
                raise ValueError(f"{where} must be a string, got {type(text).__name__ if text is not None else 'null'}")
            if not text.strip():
                raise ValueError(f"{where} is empty or only whitespace")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class ClassificationPublic(BaseModel):
    index: int
    label: str
    scores: dict[str, float]  # per label, summing to 1
    ambiguous: bool  # the top-two margin is under the ambiguity threshold
    margin: float


class ClassifyResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[ClassificationPublic]


class RouteContentPart(BaseModel):
    """An OpenAI content part; only `text` parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=40)
    text: str | None = None


class RouteMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1, max_length=40)
    content: str | list[RouteContentPart] | None = None


class RouteRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"messages": [{"role": "user", "content": "a logo for my bakery"}]}]},
    )

    messages: list[RouteMessage] = Field(min_length=1)
    model: str | None = Field(default=None, min_length=1, max_length=120)


class RoutePublic(BaseModel):
    """Which capability answers the last user message, and why."""

    object: Literal["route"] = "route"
    model: str
    route: str  # image | diagram | chat for the default router; a custom classifier's label otherwise
    label: str
    scores: dict[str, float]
    ambiguous: bool
    margin: float
    message_index: int


# -- text generation: /v1/chat/completions and /v1/completions (OpenAI shapes) -------------------------------


class ChatContentPart(BaseModel):
    """A content part; only text parts are served (image or audio parts are refused)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ChatContentPart]
    name: str | None = Field(default=None, max_length=64)

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, part in enumerate(value):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise ValueError(f"content[{index}]: only text parts ({{'type': 'text', 'text': ...}}) are served")
        return value

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


def _check_stop(value: str | list[str] | None) -> str | list[str] | None:
    if isinstance(value, list) and len(value) > 4:
        raise ValueError(f"stop takes at most 4 sequences, got {len(value)}")
    if any(len(stop) > 256 for stop in ([value] if isinstance(value, str) else value or [])):
        raise ValueError("each stop sequence may be at most 256 characters")
    return value


class TextSamplingOptions(BaseModel):
    """Fields chat completions and completions share. Fields OpenAI has and we do not serve are refused with
    400 when set to anything but their neutral value (see services/text.py), never silently ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=120)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    user: str | None = Field(default=None, max_length=256)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        return _check_stop(value)

    @field_validator("temperature", "top_p")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def stop_sequences(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in stops if s)


class ChatCompletionRequest(TextSamplingOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "tiny-llm",
                    "messages": [{"role": "user", "content": "A sequence diagram of a login"}],
                    "max_tokens": 64,
                    "temperature": 0,
                }
            ]
        },
    )

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    # Accepted for compatibility and refused unless neutral: tools, structured output and logprobs.
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    # Accepted and ignored: they do not change the completion.
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None


class Attachment(BaseModel):
    """What a `model="auto"` answer made besides text: an image or a diagram, with a signed URL."""

    type: Literal["image", "diagram"]
    id: str
    url: str
    plantuml: str | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    attachments: list[Attachment] | None = None  # ours: set by model="auto" when it made an image or a diagram


class ChatCompletionChoice(BaseModel):
    index: int
    message: ChatCompletionMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage
    system_fingerprint: str | None = None
    route: RoutePublic | None = None  # ours: set when model="auto" (the router's decision, as /v1/route gives it)


class ChatCompletionDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    attachments: list[Attachment] | None = None  # ours: model="auto" answers with an image or a diagram


class ChatCompletionChunkChoice(BaseModel):
    index: int
    delta: ChatCompletionDelta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    route: RoutePublic | None = None  # ours: on the first chunk when model="auto"


class CompletionRequest(TextSamplingOptions):
    """OpenAI's legacy completions: `prompt` is passed to the model verbatim (no chat or plain template)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "tiny-llm", "prompt": "@startuml\n", "max_tokens": 32}]},
    )

    prompt: str | list[str]
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = None
    best_of: int | None = None

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("prompt must list at least one string")
        return value

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"] | None
    logprobs: None = None


class CompletionResponse(BaseModel):
    """A completion, or (object "text_completion" too, as OpenAI sends it) one chunk of a streamed one."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class DiagramRenderRequest(BaseModel):
    """`POST /v1/diagrams/render`: PlantUML source to check with PlantUML and draw."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"plantuml": "@startuml\nAlice -> Bob: hello\n@enduml", "format": "png"}],
        },
    )

    # Its length and line count are capped by diagrams.max_source_chars / max_source_lines (413 above).
    plantuml: str = Field(min_length=1)
    format: Literal["png", "svg"] = "png"
    response_format: Literal["url", "b64_json"] = "url"


class DiagramErrorPublic(BaseModel):
    line: int | None  # counting from 1 in the caller's source; None when PlantUML gave none
    message: str


class DiagramRenderPublic(BaseModel):
    id: str
    object: Literal["diagram.render"] = "diagram.render"
    created: int
    valid: bool
    diagram_type: str | None = None  # PlantUML's own name: sequence, class, description, activity, mindmap...
    errors: list[DiagramErrorPublic] = Field(default_factory=list)
    format: Literal["png", "svg"]
    width: int
    height: int
    url: str | None = None  # signed, expiring; the owner's key also opens it without the signature
    b64_json: str | None = None
    render_time_s: float


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


class DiagramGenerateRequest(BaseModel):
    """`POST /v1/diagrams`: a scenario in words; a text model writes PlantUML, checked and retried, then drawn."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prompt": "A sequence diagram of a user logging in", "format": "png"}]},
    )

    prompt: str = Field(min_length=1, max_length=20_000)
    model: str | None = Field(default=None, max_length=120)  # a text base or adapter; default: assistant settings
    format: Literal["png", "svg"] = "png"
    max_attempts: int | None = Field(default=None, ge=1)  # capped by assistant.max_diagram_attempts
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    max_tokens: int | None = Field(default=None, ge=1)
    response_format: Literal["url", "b64_json"] = "url"


class DiagramAttemptPublic(BaseModel):
    seed: int
    temperature: float
    valid: bool
    errors: list[DiagramErrorPublic]


class DiagramGeneratePublic(BaseModel):
    id: str | None  # the rendered diagram's id; None when no attempt was valid
    object: Literal["diagram"] = "diagram"
    created: int
    model: str
    plantuml: str  # the valid attempt's, else the last one's
    valid: bool
    attempts: int
    errors: list[DiagramErrorPublic]  # the last attempt's (empty when valid)
    tries: list[DiagramAttemptPublic]
    diagram_type: str | None = None
    format: Literal["png", "svg"]
    url: str | None = None
    b64_json: str | None = None
