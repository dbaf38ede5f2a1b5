"""Setting up a LoRA run: device and precision, the base pipeline, the LoRA layers and the optimizer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.devices import bf16_supported, cuda_available
from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.inference.loader import MODULE_BUILD_LOCK, cached_snapshot, from_pretrained_offline_first
from genfoundry.model_files import parse_single_file_source

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator

    from genfoundry.training.config import LoraTrainingConfig

PIPELINE_CLASSES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline"}
_ADAM_BETAS = (0.9, 0.999)
_WEIGHT_DECAY = 1e-2
_ADAM_EPS = 1e-8


def resolve_mixed_precision(precision: str) -> str:
    """The precision a run uses on this machine ("auto" resolved); Invalid when the device cannot do it. The GPU is
    probed through genfoundry.devices, as every engine's device and dtype are."""
    cuda = cuda_available()
    if precision == "auto":
        return ("bf16" if bf16_supported() else "fp16") if cuda else "no"
    if precision != "no" and not cuda:
        raise Invalid(
            f'mixed_precision {precision!r} needs a CUDA GPU and none is available; use "no" or "auto"',
            param="mixed_precision",
        )
    if precision == "bf16" and not bf16_supported():
        raise Invalid(
            'mixed_precision "bf16" needs a GPU with bfloat16 support (Ampere or newer); use "fp16"',
            param="mixed_precision",
        )
    return precision


def bitsandbytes_problem() -> str | None:
    """Why bitsandbytes' 8-bit AdamW cannot run here, or None when it can."""
    try:
        from bitsandbytes.optim.adamw import AdamW8bit  # noqa: F401
    except Exception as exc:  # ImportError, or a RuntimeError from a broken CUDA setup
        return f"bitsandbytes cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return None


def make_accelerator(config: LoraTrainingConfig) -> tuple[Accelerator, torch.dtype]:
    """An Accelerator for the run and the dtype of the frozen weights (LoRA weights stay float32)."""
    import torch
    from accelerate import Accelerator

    cuda = cuda_available()
    precision = resolve_mixed_precision(config.mixed_precision)
    try:
        accelerator = Accelerator(mixed_precision=precision, cpu=not cuda)
    except ValueError as exc:  # accelerate fixes one precision per process; jobs run one process each
        raise RuntimeError(f"cannot switch to mixed precision {precision!r} in this process: {exc}") from exc
    dtypes = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    return accelerator, dtypes[precision]


def _dtype_kwarg() -> str:
    """diffusers renamed from_pretrained's `torch_dtype` to `dtype` (the old name warns); support both."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def load_base_pipeline(config: LoraTrainingConfig, dtype: torch.dtype, **components: Any) -> Any:
    """The family's text-to-image pipeline from a local folder or a Hub repo id (offline rules apply);
    `components` (e.g. unet=...) replace the base's own."""
    import diffusers
    import torch

    pipeline_cls = getattr(diffusers, PIPELINE_CLASSES[config.family])
    kwargs: dict[str, Any] = dict(components)
    if dtype != torch.float32:
        kwargs[_dtype_kwarg()] = dtype
    if config.family == "sd15":
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    source = config.base_source
    single = parse_single_file_source(source)
    if single is not None:
        from genfoundry.models.single_file import load_single_file_pipeline

        with MODULE_BUILD_LOCK:
            pipe = load_single_file_pipeline(config.family, single, dtype=dtype, **components)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    local = Path(source).expanduser()
    if not local.is_dir():
        pipe = from_pretrained_offline_first(
            pipeline_cls.from_pretrained,
            source,
            cached=cached_snapshot(source, "model_index.json") is not None,
            what=f"base model {source!r}",
            missing="the weights are",
            **kwargs,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe
    try:
        with MODULE_BUILD_LOCK:
            pipe = pipeline_cls.from_pretrained(local, **kwargs)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelUnavailable(f"base model {source!r} cannot be loaded for training: {reason}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def check_target_modules(denoiser: Any, targets: tuple[str, ...]) -> None:
    """Invalid naming every target module that matches no layer (PEFT only complains when none match)."""
    from torch import nn

    names = [name for name, module in denoiser.named_modules() if isinstance(module, nn.Linear | nn.Conv2d)]
    # PEFT's rule for a list of names: the full module name, or its dotted suffix.
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        raise Invalid(
            f"target_modules {', '.join(missing)} match no layer of the {type(denoiser).__name__}",
            param="target_modules",
        )


def add_lora(denoiser: Any, config: LoraTrainingConfig, device: torch.device, dtype: torch.dtype) -> Any:
    """Freeze the denoiser, add a seeded gaussian-initialized LoRA, move it; return the PEFT LoraConfig."""
    import torch
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    denoiser.requires_grad_(False)
    # PEFT accepts any number (its hint says int); an integral alpha stays an int in the saved metadata.
    alpha: Any = int(config.alpha) if float(config.alpha).is_integer() else config.alpha
    lora_config = LoraConfig(
        r=config.rank,
        lora_alpha=alpha,
        init_lora_weights="gaussian",
        target_modules=list(config.target_modules),
    )
    # LoRA init draws from the global RNG: seed it here only, leaving the caller's RNG as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        with MODULE_BUILD_LOCK:
            denoiser.add_adapter(lora_config)
    denoiser.to(device) if denoiser.dtype == dtype else denoiser.to(device, dtype=dtype)
    # Frozen weights may be half precision; the trained ones stay float32 so small updates are not lost.
    cast_training_params(denoiser, dtype=torch.float32)
    if config.gradient_checkpointing:
        denoiser.enable_gradient_checkpointing()
    denoiser.train()
    return lora_config


TEXT_ENCODER_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")  # CLIP attention, as diffusers targets


def add_text_encoder_lora(encoder: Any, config: LoraTrainingConfig, device: torch.device) -> None:
    """Freeze a CLIP text encoder and add a LoRA (the run's rank and alpha) on its attention projections."""
    import torch
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    encoder.requires_grad_(False)
    alpha: Any = int(config.alpha) if float(config.alpha).is_integer() else config.alpha
    lora_config = LoraConfig(
        r=config.rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(TEXT_ENCODER_TARGET_MODULES)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        with MODULE_BUILD_LOCK:
            encoder.add_adapter(lora_config)
    encoder.to(device)
    cast_training_params(encoder, dtype=torch.float32)
    if config.gradient_checkpointing:
        encoder.gradient_checkpointing_enable()
    encoder.train()


def make_optimizer(
    config: LoraTrainingConfig, params: list[torch.nn.Parameter], log: Callable[[str], None]
) -> torch.optim.Optimizer:
    """AdamW, 8-bit (bitsandbytes) when asked for and importable."""
    import torch

    optimizer_cls: Any = torch.optim.AdamW
    if config.use_8bit_adam:
        try:
            from bitsandbytes.optim.adamw import AdamW8bit
        except ImportError:
            log("use_8bit_adam: bitsandbytes is not installed; using torch AdamW (more optimizer memory)")
        else:
            optimizer_cls = AdamW8bit
    optimizer: torch.optim.Optimizer = optimizer_cls(
        params, lr=config.learning_rate, betas=_ADAM_BETAS, weight_decay=_WEIGHT_DECAY, eps=_ADAM_EPS
    )
    return optimizer


def make_lr_scheduler(config: LoraTrainingConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    """diffusers' named schedule over the run's optimizer steps."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps,
        num_training_steps=total_steps,
    )
