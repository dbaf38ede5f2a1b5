"""SFT configuration: LoRA / QLoRA on a causal LM, with checks that name the offending field."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from genfoundry.errors import Invalid
from genfoundry.schemas.common import SEED_MAX
from genfoundry.text.formats import PLAIN_TEMPLATE, PROMPT_FORMATS, check_plain_template
from genfoundry.training.config import check_choice, check_float, check_int

QUANTIZATIONS = ("none", "4bit")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
ALL_LINEAR = "all-linear"  # PEFT's shorthand: every linear layer but the output head
DEFAULT_EPOCHS = 3
_MAX_STEPS = 1_000_000
# Fields a checkpoint must share with the run that resumes it: they shape the trained weights, their scale, or
# the token streams they were trained on.
RESUME_FIELDS = (
    "base_source",
    "prompt_format",
    "chat_template",
    "plain_template",
    "rank",
    "alpha",
    "target_modules",
    "quantization",
    "max_seq_length",
    "packing",
    "batch_size",
    "gradient_accumulation_steps",
    "validation_fraction",
    "seed",
)


@dataclass(frozen=True)
class SftTrainingConfig:
    """Everything an SFT run needs besides the data. `base_source` is a model folder or a Hugging Face repo id.

    `chat_template` None uses the tokenizer's own; the template used is stored with the adapter either way.
    Exactly one of `max_steps` / `epochs` decides the length (neither: DEFAULT_EPOCHS epochs).
    `eval_every_n_steps` None evaluates at every checkpoint, 0 only at the end (with a validation split).
    """

    base_source: str
    base_id: str | None = None  # the catalog id recorded with the adapter; defaults to base_source
    prompt_format: str = "chat_template"
    chat_template: str | None = None
    plain_template: str = PLAIN_TEMPLATE
    rank: int = 16
    alpha: float | None = None  # defaults to 2 x rank
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = (ALL_LINEAR,)
    learning_rate: float = 2e-4
    lr_scheduler: str = "linear"
    lr_warmup_steps: int = 0
    weight_decay: float = 0.0
    max_steps: int | None = None
    epochs: int | None = None
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_seq_length: int = 1024
    packing: bool = False
    quantization: str = "none"  # "4bit": QLoRA, NF4 weights with double quantization through bitsandbytes
    dtype: str = "auto"  # frozen weights: bfloat16 on a bf16 GPU, float32 elsewhere
    device: str = "auto"
    gradient_checkpointing: bool = False
    max_grad_norm: float = 1.0  # 0 disables clipping
    validation_fraction: float = 0.0
    eval_every_n_steps: int | None = None
    checkpoint_every_n_steps: int = 100
    keep_last_n_checkpoints: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.base_source, str) or not self.base_source.strip():
            raise Invalid("base_source must name a model folder or a Hugging Face repo id", param="model")
        if self.base_id is None:
            self._set("base_id", self.base_source)
        check_choice("prompt_format", self.prompt_format, PROMPT_FORMATS)
        if self.chat_template is not None and (not isinstance(self.chat_template, str) or not self.chat_template):
            raise Invalid("chat_template must be a non-empty jinja template string", param="chat_template")
        check_plain_template(self.plain_template)
        check_int("rank", self.rank, 1, 512)
        if self.alpha is None:
            self._set("alpha", float(2 * self.rank))
        self._set("alpha", check_float("alpha", self.alpha, 0.0, 4096.0, low_open=True))
        self._set("lora_dropout", check_float("lora_dropout", self.lora_dropout, 0.0, 0.9))
        self._set("target_modules", _target_modules(self.target_modules))
        self._set("learning_rate", check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True))
        check_choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        check_int("lr_warmup_steps", self.lr_warmup_steps, 0, _MAX_STEPS)
        self._set("weight_decay", check_float("weight_decay", self.weight_decay, 0.0, 10.0))
        if self.max_steps is not None and self.epochs is not None:
            raise Invalid("set max_steps or n_epochs, not both", param="n_epochs")
        if self.max_steps is None and self.epochs is None:
            self._set("epochs", DEFAULT_EPOCHS)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1, _MAX_STEPS)
        if self.epochs is not None:
            check_int("n_epochs", self.epochs, 1, 1000)
        check_int("batch_size", self.batch_size, 1, 256)
        check_int("gradient_accumulation_steps", self.gradient_accumulation_steps, 1, 1024)
        check_int("max_seq_length", self.max_seq_length, 16, 131_072)
        _check_bool("packing", self.packing)
        check_choice("quantization", self.quantization, QUANTIZATIONS)
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("device", self.device, DEVICES)
        _check_bool("gradient_checkpointing", self.gradient_checkpointing)
        self._set("max_grad_norm", check_float("max_grad_norm", self.max_grad_norm, 0.0, 1e6))
        self._set("validation_fraction", check_float("validation_fraction", self.validation_fraction, 0.0, 0.5))
        check_int("checkpoint_every_n_steps", self.checkpoint_every_n_steps, 1, _MAX_STEPS)
        if self.eval_every_n_steps is not None:
            check_int("eval_every_n_steps", self.eval_every_n_steps, 0, _MAX_STEPS)
        check_int("keep_last_n_checkpoints", self.keep_last_n_checkpoints, 1, 1000)
        check_int("seed", self.seed, 0, SEED_MAX)

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    @classmethod
    def from_params(cls, base_source: str, params: Mapping[str, Any], **fixed: Any) -> Self:
        """Build from hyperparameters (`n_epochs` is OpenAI's name for epochs); an unknown name is Invalid.

        `fixed` carries what the caller decides rather than the user (base_id, prompt_format, device).
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"base_source", "base_id", "epochs"} | {"n_epochs"}
        values: dict[str, Any] = {}
        for name, value in params.items():
            if name not in known:
                raise Invalid(f"unknown SFT hyperparameter {name!r}; known: {', '.join(sorted(known))}", param=name)
            values["epochs" if name == "n_epochs" else name] = value
        if isinstance(values.get("target_modules"), list):
            values["target_modules"] = tuple(values["target_modules"])
        return cls(base_source=base_source, **{**values, **fixed})

    @property
    def eval_interval(self) -> int:
        """Steps between evaluations; 0: only at the end."""
        return self.checkpoint_every_n_steps if self.eval_every_n_steps is None else self.eval_every_n_steps

    def peft_target_modules(self) -> str | list[str]:
        return ALL_LINEAR if self.target_modules == (ALL_LINEAR,) else list(self.target_modules)

    def total_steps(self, batches_per_epoch: int) -> int:
        """Optimizer steps: max_steps, or epochs over `batches_per_epoch` micro-batches."""
        if self.max_steps is not None:
            return self.max_steps
        epochs = self.epochs or DEFAULT_EPOCHS
        return max(1, math.ceil(epochs * batches_per_epoch / self.gradient_accumulation_steps))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (tuples as lists), stored with checkpoints and the adapter."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false; got {value!r}", param=name)


def _target_modules(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple) or not value or len(value) > 64:
        raise Invalid(
            "target_modules must be a non-empty list of module names, or 'all-linear'", param="target_modules"
        )
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 200:
            raise Invalid("target_modules entries must be non-empty module names", param="target_modules")
        names.append(item.strip())
    if ALL_LINEAR in names and len(names) > 1:
        raise Invalid("'all-linear' stands alone in target_modules", param="target_modules")
    return tuple(names)
