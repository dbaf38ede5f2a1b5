"""Where models run and in which precision, decided here for every engine: the image loader, the text engine, the
captioner, the router's encoder and the SFT recipe (the LoRA recipe probes the GPU through it too; its mixed
precision names are accelerate's, in training/lora_setup.py).

Device: a setting of "auto" is CUDA when torch sees a GPU, else the CPU; "cpu", "cuda" and "cuda:N" are taken as
given (CUDA asked for on a machine without it is an error, not a silent CPU run); anything else is an error that
names what is accepted.

Dtype: a model's own catalog dtype wins, then the server's `dtype` setting; "auto" is float32 on the CPU (no fast
half-precision kernels there) and on a GPU depends on the model: float16 for the SD 1.5 / SDXL families (their
published weights and VAEs are fp16), bfloat16 for FLUX, text models and captioners where the GPU has it (else
float16), and float32 for the router's sentence encoder (its shipped classifier head was fitted on float32
embeddings). torch is imported only by the functions that need it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from genfoundry.errors import Invalid

if TYPE_CHECKING:
    import torch

DTYPES = ("auto", "float32", "float16", "bfloat16")
_HALF_KINDS = frozenset({"sd15", "sdxl"})  # image families: the kind is BaseModelSpec.family
_BF16_KINDS = frozenset({"flux", "text", "captioner"})
MODEL_KINDS = (*sorted(_HALF_KINDS), *sorted(_BF16_KINDS), "encoder")
_DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def bf16_supported() -> bool:
    """Whether the (available) GPU computes in bfloat16 (Ampere and newer)."""
    import torch

    return bool(torch.cuda.is_bf16_supported())


def check_device(setting: str) -> None:
    """Invalid unless `setting` is "auto", "cpu", "cuda" or "cuda:N"; needs no torch."""
    if setting != "auto" and not _DEVICE_PATTERN.fullmatch(setting):
        raise Invalid(
            f"unknown device {setting!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N' (a GPU index)", param="device"
        )


def resolve_device(setting: str = "auto") -> str:
    """The device a `setting` names on this machine ("auto": "cuda" when torch sees a GPU, else "cpu")."""
    check_device(setting)
    if setting == "cpu":
        return "cpu"
    if setting == "auto":
        return "cuda" if cuda_available() else "cpu"
    if not cuda_available():
        raise Invalid(
            f"device {setting!r} was asked for and torch sees no CUDA GPU; use 'auto' or 'cpu'",
            param="device",
        )
    return setting


def check_dtype(name: str) -> None:
    if name not in DTYPES:
        raise Invalid(f"unknown dtype {name!r}; expected one of {', '.join(DTYPES)}", param="dtype")


def engine_dtype(setting: str, device: str) -> str:
    """An engine's default dtype for its `device`: the setting when explicit, "float32" on the CPU, else "auto"
    (each model's kind picks on the GPU; `model_dtype`)."""
    check_dtype(setting)
    if setting != "auto":
        return setting
    return "auto" if device.startswith("cuda") else "float32"


def model_dtype(spec_dtype: str, default: str, device: str, kind: str) -> str:
    """The dtype name one model of `kind` loads in: its own `spec_dtype`, else the engine's `default`, else (both
    "auto") the kind's choice for `device`."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    check_dtype(spec_dtype)
    check_dtype(default)
    name = spec_dtype if spec_dtype != "auto" else default
    if name != "auto":
        return name
    if not device.startswith("cuda") or not cuda_available() or kind == "encoder":
        return "float32"
    if kind in _HALF_KINDS:
        return "float16"
    return "bfloat16" if bf16_supported() else "float16"


def model_torch_dtype(spec_dtype: str, default: str, device: str, kind: str) -> torch.dtype:
    """`model_dtype` as a torch dtype."""
    import torch

    dtype: torch.dtype = getattr(torch, model_dtype(spec_dtype, default, device, kind))
    return dtype


def training_dtype(setting: str, device: str) -> str:
    """The frozen base's dtype in the SFT recipe: the setting when explicit; "auto" is bfloat16 on a GPU that has
    it, else float32 (a float16 base would need loss scaling)."""
    check_dtype(setting)
    if setting != "auto":
        return setting
    return "bfloat16" if device.startswith("cuda") and cuda_available() and bf16_supported() else "float32"
