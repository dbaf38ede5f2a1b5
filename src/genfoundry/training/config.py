"""LoRA training configuration: per-family defaults and validation that names the offending field."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from genfoundry.errors import Invalid
from genfoundry.schemas.common import SEED_MAX
from genfoundry.training.data import with_trigger_word

FAMILIES = ("sd15", "sdxl", "flux")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
OPTIMIZERS = ("adamw", "adamw8bit")  # the API's `optimizer`; the config keeps it as use_8bit_adam
TEXT_ENCODER_FAMILIES = ("sd15", "sdxl")  # train_text_encoder: CLIP encoders; FLUX's T5 is out of reach
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")

# The attention projections of every UNet transformer block (diffusers' SD/SDXL LoRA scripts).
UNET_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
# What diffusers' train_dreambooth_lora_flux.py targets when --lora_layers is not given: the joint attention
# (image and text streams) and both feed-forwards of the double blocks; "attn.to_*" also hits single blocks.
FLUX_TARGET_MODULES = (
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
)

# Defaults for the fields a family decides. FLUX follows the seed systems (rank 16, AdamW 8-bit, lr 1e-4,
# 2,000 steps, a checkpoint every 250 steps, 512 px; 1024 px is the other seed's choice and needs ~2x VRAM).
# SD 1.5 trains at its native 512 px; SDXL at 1024 px with gradient checkpointing, as diffusers' scripts do.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "sd15": {
        "rank": 16,
        "learning_rate": 1e-4,
        "max_steps": 1500,
        "resolution": 512,
        "target_modules": UNET_TARGET_MODULES,
        "gradient_checkpointing": False,
        "use_8bit_adam": False,
        "checkpoint_every_n_steps": 250,
        "sample_every_n_steps": 250,
        "sample_steps": 25,
        "sample_guidance_scale": 7.5,
    },
    "sdxl": {
        "rank": 16,
        "learning_rate": 1e-4,
        "max_steps": 1500,
        "resolution": 1024,
        "target_modules": UNET_TARGET_MODULES,
        "gradient_checkpointing": True,
        "use_8bit_adam": False,
        "checkpoint_every_n_steps": 250,
        "sample_every_n_steps": 250,
        "sample_steps": 25,
        "sample_guidance_scale": 5.0,
    },
    "flux": {
        "rank": 16,
        "learning_rate": 1e-4,
        "max_steps": 2000,
        "resolution": 512,
        "target_modules": FLUX_TARGET_MODULES,
        "gradient_checkpointing": True,
        "use_8bit_adam": True,
        "checkpoint_every_n_steps": 250,
        "sample_every_n_steps": 250,
        "sample_steps": 20,
        "sample_guidance_scale": 3.5,
    },
}

# Typed as Any so a field can be declared with its real type and still default to "the family decides".
FAMILY_DEFAULT: Any = None
_MAX_STEPS = 100_000


@dataclass(frozen=True)
class LoraTrainingConfig:
    """Everything a LoRA run needs besides the data; fields left at FAMILY_DEFAULT come from FAMILY_DEFAULTS."""

    family: str
    base_source: str  # a pipeline folder or a Hugging Face repo id
    trigger_word: str | None = None
    rank: int = FAMILY_DEFAULT
    alpha: float = FAMILY_DEFAULT  # defaults to rank (scale 1)
    target_modules: tuple[str, ...] = FAMILY_DEFAULT
    learning_rate: float = FAMILY_DEFAULT
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    max_steps: int | None = None  # exactly one of max_steps / epochs; neither means the family's max_steps
    epochs: int | None = None
    batch_size: int = 1
    gradient_accumulation_steps: int = 1
    resolution: int = FAMILY_DEFAULT
    seed: int = 0
    mixed_precision: str = "auto"  # "auto": bf16 (or fp16) on CUDA, "no" elsewhere
    gradient_checkpointing: bool = FAMILY_DEFAULT
    use_8bit_adam: bool = FAMILY_DEFAULT  # falls back to torch AdamW, with a log line, without bitsandbytes
    bucketing: bool = True  # aspect-ratio buckets; False center-crops every image to resolution²
    train_text_encoder: bool = False  # LoRA on the text encoder(s) too, prompts encoded every step
    max_grad_norm: float = 1.0  # 0 disables clipping
    train_guidance_scale: float = 3.5  # FLUX.1-dev's distilled guidance input while training; unused for SD
    checkpoint_every_n_steps: int = FAMILY_DEFAULT
    save_every_n_epochs: int = 0  # also checkpoint at the end of every n-th epoch; 0 never
    keep_last_n_checkpoints: int = 3
    sample_every_n_steps: int = FAMILY_DEFAULT  # 0 never samples; samples need validation_prompts
    validation_prompts: tuple[str, ...] = ()
    sample_steps: int = FAMILY_DEFAULT
    sample_resolution: int = FAMILY_DEFAULT  # defaults to resolution
    sample_guidance_scale: float = FAMILY_DEFAULT

    KIND: ClassVar[str] = "LoRA"  # how error messages name this recipe's hyperparameters

    def __post_init__(self) -> None:
        check_choice("family", self.family, FAMILIES)
        if not isinstance(self.base_source, str) or not self.base_source.strip():
            raise Invalid("base_source must name a pipeline folder or a Hugging Face repo id", param="base_source")
        for name, value in self.family_defaults().items():
            if name != "max_steps" and getattr(self, name) is None:  # max_steps competes with epochs below
                self._set(name, value)
        if getattr(self, "alpha", None) is None:
            self._set("alpha", self.rank)
        if getattr(self, "sample_resolution", None) is None:
            self._set("sample_resolution", self.resolution)
        self._set("target_modules", _strings("target_modules", self.target_modules, max_items=64, max_len=200))
        self._set("validation_prompts", _strings("validation_prompts", self.validation_prompts, 16, 1000, True))
        self._set("trigger_word", _trigger_word(self.trigger_word))
        self._validate_numbers()

    def family_defaults(self) -> dict[str, Any]:
        """Values for the fields left at FAMILY_DEFAULT (and max_steps when epochs is not set either)."""
        return FAMILY_DEFAULTS[self.family]

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _validate_numbers(self) -> None:
        check_int("rank", self.rank, 1, 256)
        self._set("alpha", check_float("alpha", self.alpha, 0.0, 4096.0, low_open=True))
        self._set("learning_rate", check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True))
        check_choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        check_int("lr_warmup_steps", self.lr_warmup_steps, 0, _MAX_STEPS)
        if self.max_steps is not None and self.epochs is not None:
            raise Invalid("set max_steps or epochs, not both", param="epochs")
        if self.max_steps is None and self.epochs is None:
            self._set("max_steps", self.family_defaults()["max_steps"])
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1, _MAX_STEPS)
        if self.epochs is not None:
            check_int("epochs", self.epochs, 1, 10_000)
        check_int("batch_size", self.batch_size, 1, 64)
        check_int("gradient_accumulation_steps", self.gradient_accumulation_steps, 1, 1024)
        for name in ("resolution", "sample_resolution"):
            _check_resolution(name, getattr(self, name), self.family)
        check_int("seed", self.seed, 0, SEED_MAX)
        check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        for name in ("gradient_checkpointing", "use_8bit_adam", "bucketing", "train_text_encoder"):
            if not isinstance(getattr(self, name), bool):
                raise Invalid(f"{name} must be true or false", param=name)
        if self.train_text_encoder and self.family not in TEXT_ENCODER_FAMILIES:
            raise Invalid(
                f"train_text_encoder trains the CLIP text encoders of {', '.join(TEXT_ENCODER_FAMILIES)}; "
                f"{self.family} trains its denoiser only",
                param="train_text_encoder",
            )
        self._set("max_grad_norm", check_float("max_grad_norm", self.max_grad_norm, 0.0, 1e6))
        self._set("train_guidance_scale", check_float("train_guidance_scale", self.train_guidance_scale, 0, 30))
        check_int("checkpoint_every_n_steps", self.checkpoint_every_n_steps, 1, _MAX_STEPS)
        check_int("save_every_n_epochs", self.save_every_n_epochs, 0, 10_000)
        check_int("keep_last_n_checkpoints", self.keep_last_n_checkpoints, 1, 1000)
        check_int("sample_every_n_steps", self.sample_every_n_steps, 0, _MAX_STEPS)
        check_int("sample_steps", self.sample_steps, 1, 200)
        self._set("sample_guidance_scale", check_float("sample_guidance_scale", self.sample_guidance_scale, 0, 30))

    @classmethod
    def from_params(cls, family: str, base_source: str, params: Mapping[str, Any]) -> Self:
        """Build from a mapping of hyperparameters; an unknown name is Invalid rather than silently ignored."""
        known = {f.name for f in dataclasses.fields(cls)} - {"family", "base_source"}
        for name in params:
            if name not in known:
                raise Invalid(
                    f"unknown {cls.KIND} hyperparameter {name!r}; known: {', '.join(sorted(known))}", param=name
                )
        return cls(family=family, base_source=base_source, **dict(params))

    @property
    def optimizer(self) -> str:
        """The API's name for the optimizer this config trains with."""
        return "adamw8bit" if self.use_8bit_adam else "adamw"

    def total_steps(self, batches_per_epoch: int) -> int:
        """Optimizer steps for the run: max_steps, or epochs over `batches_per_epoch` micro-batches."""
        if self.max_steps is not None:
            return self.max_steps
        epochs = self.epochs or 1
        return max(1, math.ceil(epochs * batches_per_epoch / self.gradient_accumulation_steps))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (tuples as lists), stored with checkpoints and in the adapter's metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


TRAIN_MODES = ("lora", "full")
FULL_FINE_TUNE_FAMILIES = ("sd15", "sdxl")
# What differs from the LoRA defaults, after diffusers' DreamBooth examples: 500 steps at lr 1e-4 for a LoRA
# (train_dreambooth_lora*.py); a full UNet fine-tune at lr 5e-6 for 800 steps with prior preservation
# (train_dreambooth.py), with gradient checkpointing and 8-bit Adam to fit the optimizer state.
DREAMBOOTH_DEFAULTS: dict[str, dict[str, Any]] = {
    "lora": {"max_steps": 500},
    "full": {"learning_rate": 5e-6, "max_steps": 800, "gradient_checkpointing": True, "use_8bit_adam": True},
}
_MAX_CLASS_IMAGES = 10_000


@dataclass(frozen=True)
class DreamBoothTrainingConfig(LoraTrainingConfig):
    """A DreamBooth run: instance prompt, optional prior preservation with generated class images, LoRA or full.

    `instance_prompt` replaces every caption; it defaults to "a photo of <trigger_word> <class_word>" when
    `class_word` is set, else the captions train as in the LoRA recipe. `class_prompt` defaults to
    "a photo of <class_word>"; prior preservation is on when there is a class prompt unless turned off.
    `epochs` count passes over the instance images. The LoRA fields (rank, alpha, target_modules) are
    unused with train_mode "full".
    """

    train_mode: str = "lora"
    instance_prompt: str | None = None
    class_word: str | None = None
    class_prompt: str | None = None
    with_prior_preservation: bool | None = None  # None: on exactly when there is a class prompt
    num_class_images: int = 100
    prior_loss_weight: float = 1.0
    class_image_steps: int = 25  # denoising steps per generated class image
    class_guidance_scale: float = FAMILY_DEFAULT  # defaults to the family's sample_guidance_scale

    KIND: ClassVar[str] = "DreamBooth"

    def __post_init__(self) -> None:
        check_choice("train_mode", self.train_mode, TRAIN_MODES)  # the family defaults depend on it
        super().__post_init__()
        if self.train_mode == "full" and self.train_text_encoder:
            raise Invalid(
                'train_text_encoder adds LoRA layers: use it with train_mode "lora"', param="train_text_encoder"
            )
        if self.train_mode == "full" and self.family not in FULL_FINE_TUNE_FAMILIES:
            raise Invalid(
                f'train_mode "full" fine-tunes a UNet ({", ".join(FULL_FINE_TUNE_FAMILIES)}); {self.family} '
                'trains as train_mode "lora"',
                param="train_mode",
            )
        self._set("class_word", _prompt("class_word", self.class_word, 100))
        self._set("instance_prompt", self._resolve_instance_prompt())
        class_prompt = _prompt("class_prompt", self.class_prompt, 1000)
        if class_prompt is None and self.class_word is not None:
            class_prompt = f"a photo of {self.class_word}"
        self._set("class_prompt", class_prompt)
        if self.with_prior_preservation is None:
            self._set("with_prior_preservation", class_prompt is not None)
        elif not isinstance(self.with_prior_preservation, bool):
            raise Invalid("with_prior_preservation must be true or false", param="with_prior_preservation")
        if self.with_prior_preservation and class_prompt is None:
            raise Invalid("prior preservation needs a class_prompt (or a class_word)", param="class_prompt")
        check_int("num_class_images", self.num_class_images, 1, _MAX_CLASS_IMAGES)
        self._set("prior_loss_weight", check_float("prior_loss_weight", self.prior_loss_weight, 0.0, 100.0))
        check_int("class_image_steps", self.class_image_steps, 1, 200)
        self._set("class_guidance_scale", check_float("class_guidance_scale", self.class_guidance_scale, 0, 30))

    def family_defaults(self) -> dict[str, Any]:
        family = FAMILY_DEFAULTS[self.family]
        mode = DREAMBOOTH_DEFAULTS[self.train_mode]
        return {**family, **mode, "class_guidance_scale": family["sample_guidance_scale"]}

    def _resolve_instance_prompt(self) -> str | None:
        """The prompt every instance image trains with (trigger word included), or None for the captions."""
        prompt = _prompt("instance_prompt", self.instance_prompt, 1000)
        if prompt is not None:
            return with_trigger_word(prompt, self.trigger_word)
        if self.class_word is None:
            return None
        if self.trigger_word is None:
            raise Invalid(
                "class_word builds the instance prompt 'a photo of <trigger_word> <class_word>': set a "
                "trigger_word, or give instance_prompt",
                param="trigger_word",
            )
        return f"a photo of {self.trigger_word} {self.class_word}"


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise Invalid(f"{name} must be one of {', '.join(choices)}; got {value!r}", param=name)


def check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be an integer; got {value!r}", param=name)
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low} and {high}; got {value}", param=name)


def check_float(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{name} must be a finite number; got {value!r}", param=name)
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bound = f"greater than {low}" if low_open else f"at least {low}"
        raise Invalid(f"{name} must be {bound} and at most {high}; got {value}", param=name)
    return float(value)


def _check_resolution(name: str, value: object, family: str) -> None:
    check_int(name, value, 64, 4096)
    # FLUX packs 2x2 latent patches after the VAE's 8x downsampling, so sides must divide by 16.
    multiple = 16 if family == "flux" else 8
    if isinstance(value, int) and value % multiple:
        raise Invalid(f"{name} must be a multiple of {multiple} for {family}; got {value}", param=name)


def _strings(name: str, value: object, max_items: int, max_len: int, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise Invalid(f"{name} must be a list of strings", param=name)
    if not value and not allow_empty:
        raise Invalid(f"{name} must not be empty", param=name)
    if len(value) > max_items:
        raise Invalid(f"{name} takes at most {max_items} entries; got {len(value)}", param=name)
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > max_len:
            raise Invalid(f"{name} entries must be non-empty strings of at most {max_len} characters", param=name)
    return tuple(item.strip() for item in value)


def _trigger_word(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 100 or "\n" in value:
        raise Invalid("trigger_word must be a single line of at most 100 characters", param="trigger_word")
    return value.strip() or None


def _prompt(name: str, value: object, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len or "\n" in value:
        raise Invalid(f"{name} must be a single line of at most {max_len} characters", param=name)
    return " ".join(value.split()) or None
