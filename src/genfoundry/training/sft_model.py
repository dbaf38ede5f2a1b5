"""The SFT recipe's model: the device and dtype, the tokenizer, the base causal LM (4-bit for QLoRA), the LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.inference.loader import MODULE_BUILD_LOCK, cached_snapshot, from_pretrained_offline_first
from genfoundry.training.sft_config import SftTrainingConfig

if TYPE_CHECKING:
    import torch


def resolve_device(config: SftTrainingConfig) -> tuple[torch.device, torch.dtype]:
    """The training device and the dtype of the frozen weights (the LoRA weights stay float32); genfoundry.devices
    decides both."""
    import torch

    from genfoundry.devices import resolve_device as device_for
    from genfoundry.devices import training_dtype

    device = device_for(config.device)
    return torch.device(device), getattr(torch, training_dtype(config.dtype, device))


def _from_base(load: Any, config: SftTrainingConfig, what: str, **kwargs: Any) -> Any:
    """`load` (a `from_pretrained`) on the base's folder, else from the HF cache or (if it answers) the Hub."""
    source = config.base_source
    local = Path(source).expanduser()
    if not local.is_dir():
        cached = cached_snapshot(source, "config.json") is not None
        return from_pretrained_offline_first(load, source, cached=cached, what=what, missing="the files are", **kwargs)
    try:
        with MODULE_BUILD_LOCK:
            return load(str(local), **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{what} cannot be loaded: {_first_line(exc)}") from exc


def load_tokenizer(config: SftTrainingConfig) -> Any:
    from transformers import AutoTokenizer

    return _from_base(AutoTokenizer.from_pretrained, config, f"the tokenizer of {config.base_source!r}")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_base_model(config: SftTrainingConfig, device: torch.device, dtype: torch.dtype) -> Any:
    """The causal LM, frozen; with quantization "4bit" its linear layers are NF4 (bitsandbytes), ready for k-bit
    training."""
    import importlib.util

    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype}
    if config.quantization == "4bit":
        if importlib.util.find_spec("bitsandbytes") is None:
            raise Invalid(
                'quantization "4bit" (QLoRA) needs bitsandbytes: pip install bitsandbytes', param="quantization"
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": device}
    what = f"base model {config.base_source!r}"
    model: Any = _from_base(AutoModelForCausalLM.from_pretrained, config, what, **kwargs)
    model.config.use_cache = False
    model.requires_grad_(False)
    checkpointing = {"use_reentrant": False}
    if config.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs=checkpointing,
        )
    model = model.to(device)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
    return model


def check_target_modules(model: Any, config: SftTrainingConfig) -> None:
    """Invalid naming every listed target module that matches no linear layer (PEFT only fails when none do)."""
    from torch import nn

    targets = config.peft_target_modules()
    if isinstance(targets, str):
        return
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        raise Invalid(
            f"target_modules {', '.join(missing)} match no linear layer of the {type(model).__name__}",
            param="target_modules",
        )


def add_lora(model: Any, config: SftTrainingConfig) -> Any:
    """The PEFT model: a seeded LoRA (rank, alpha, dropout) on the target modules."""
    import torch
    from peft import LoraConfig, get_peft_model

    value = float(config.alpha or 2 * config.rank)
    alpha: Any = int(value) if value.is_integer() else value
    lora_config = LoraConfig(
        r=config.rank,
        lora_alpha=alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.peft_target_modules(),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):  # LoRA init draws from the global RNG
        torch.manual_seed(config.seed)
        with MODULE_BUILD_LOCK:
            peft_model = get_peft_model(model, lora_config)
    peft_model.train()
    return peft_model
