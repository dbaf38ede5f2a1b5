"""LoRA files with our metadata, and checkpoints written atomically (temp dir + rename), keeping the last K."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid

if TYPE_CHECKING:
    import torch

CHECKPOINTS_DIR = "checkpoints"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' default name for load_lora_weights
DENOISER_WEIGHT_NAME = "diffusion_pytorch_model.safetensors"  # diffusers' name for a model folder's weights
STATE_FILE = "training_state.pt"
INFO_FILE = "checkpoint.json"
FORMAT_VERSION = 1
# What a checkpoint's weights are (checkpoint.json "weights"): LoRA layers in one file, or a whole denoiser
# saved as a diffusers model folder named after its pipeline component ("unet").
WEIGHTS_LORA = "lora"
WEIGHTS_FULL = "full"
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")  # pipeline names of the encoders train_text_encoder trains
_STEP_DIR = re.compile(r"^step_(\d+)$")
# diffusers' header key for the LoraConfig, read back by load_lora_weights to rebuild rank / alpha exactly.
_DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"
# Fields that must match for a checkpoint to continue a run: they shape the trained weights or their scale.
_RESUME_FIELDS = ("family", "train_mode", "rank", "alpha", "target_modules")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read back: its weights (LoRA tensors with PEFT keys and no component prefix, or the whole
    denoiser's state dict) and the trainer state."""

    step: int
    weights: dict[str, torch.Tensor]
    training_state: dict[str, Any]
    info: dict[str, Any]


def save_lora_file(
    folder: Path,
    *,
    pipeline_cls: Any,
    component: str,
    layers: Mapping[str, torch.Tensor],
    peft_config: Mapping[str, Any],
    metadata: Mapping[str, str],
    text_encoders: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]] | None = None,
) -> Path:
    """Write `folder/pytorch_lora_weights.safetensors` through the pipeline's save_lora_weights; `text_encoders`
    maps a text encoder's pipeline name ("text_encoder", "text_encoder_2") to its LoRA layers and config."""
    from safetensors.torch import save_file

    packed = {f"{component}.{key}": _jsonable(value) for key, value in peft_config.items()}
    for name, (_layers, config) in (text_encoders or {}).items():
        packed.update({f"{name}.{key}": _jsonable(value) for key, value in config.items()})
    header = {
        "format": "pt",
        _DIFFUSERS_METADATA_KEY: json.dumps(packed, indent=2, sort_keys=True, default=str),
        **metadata,
    }

    def write(tensors: dict[str, torch.Tensor], filename: str) -> None:
        # save_lora_weights drops its own header when given a writer, so this one carries diffusers' key too.
        save_file(tensors, filename, metadata=header)

    layer_key = "transformer_lora_layers" if component == "transformer" else "unet_lora_layers"
    encoder_layers = {f"{name}_lora_layers": dict(tensors) for name, (tensors, _c) in (text_encoders or {}).items()}
    pipeline_cls.save_lora_weights(
        folder, **{layer_key: dict(layers)}, **encoder_layers, weight_name=LORA_WEIGHT_NAME, save_function=write
    )
    return folder / LORA_WEIGHT_NAME


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    return value


def read_lora_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the header metadata of a LoRA file we wrote: the denoiser's without their component
    prefix, a text encoder's keeping theirs ("text_encoder.", "text_encoder_2.")."""
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            component, rest = key.split(".", 1)
            tensors[key if component in TEXT_ENCODERS else rest] = handle.get_tensor(key)
    return tensors, metadata


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `output_dir/checkpoints`, oldest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return sorted(found)


def write_dir_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp_dir)` next to `final`, then publish it as `final` by rename (replacing an old one).

    A failure anywhere before the rename leaves `final` as it was and no partial folder behind.
    """
    tmp = final.with_name(f".tmp-{final.name}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        _fsync_tree(tmp)
        if final.exists():  # e.g. the same step saved twice: a stop right after a scheduled save
            stale = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
            final.rename(stale)
            tmp.rename(final)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            tmp.rename(final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def save_checkpoint(output_dir: Path, step: int, *, write: Callable[[Path], None], keep_last: int) -> Path:
    """Publish `checkpoints/step_<step>` atomically, then delete all but the newest `keep_last`."""
    final = write_dir_atomically(Path(output_dir) / CHECKPOINTS_DIR / f"step_{step}", write)
    for _step, old in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_stale_temp_dirs(output_dir: Path) -> None:
    """Delete half-written folders (checkpoints, adapter) a crashed process left behind."""
    for root in (Path(output_dir), Path(output_dir) / CHECKPOINTS_DIR):
        if root.is_dir():
            for path in root.iterdir():
                if path.is_dir() and path.name.startswith((".tmp-", ".old-")):
                    shutil.rmtree(path, ignore_errors=True)


def write_training_state(folder: Path, state: dict[str, Any], info: dict[str, Any]) -> None:
    """Optimizer, lr scheduler and RNG states (torch.save) plus a JSON summary next to the LoRA file."""
    import torch

    torch.save(state, folder / STATE_FILE)
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")


def save_denoiser(folder: Path, denoiser: Any) -> Path:
    """The denoiser's config and weights as a diffusers model folder (one safetensors file, never sharded)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    denoiser.save_config(folder)
    state = {name: value.detach().to("cpu").contiguous() for name, value in denoiser.state_dict().items()}
    save_file(state, folder / DENOISER_WEIGHT_NAME, metadata={"format": "pt"})
    return folder


def load_checkpoint(path: Path, config: Mapping[str, Any], *, component: str = "unet") -> LoadedCheckpoint:
    """Read a checkpoint folder and check it was made by a run whose trained weights fit `config`'s.

    `component` names the folder of a full fine-tune's denoiser weights.
    """
    import torch
    from safetensors.torch import load_file

    folder = Path(path)
    if not all((folder / name).is_file() for name in (STATE_FILE, INFO_FILE)):
        raise Invalid(f"{folder} is not a complete training checkpoint", param="resume_from")
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    if info.get("format_version") != FORMAT_VERSION:
        raise Invalid(f"checkpoint {folder} has an unknown format version", param="resume_from")
    kind = info.get("weights", WEIGHTS_LORA)
    weights_file = folder / (LORA_WEIGHT_NAME if kind == WEIGHTS_LORA else f"{component}/{DENOISER_WEIGHT_NAME}")
    if kind not in (WEIGHTS_LORA, WEIGHTS_FULL) or not weights_file.is_file():
        raise Invalid(f"{folder} is not a complete training checkpoint", param="resume_from")
    saved = info.get("config", {})
    for name in _RESUME_FIELDS:
        if saved.get(name) != config.get(name):
            raise Invalid(
                f"checkpoint {folder.name} was trained with {name}={saved.get(name)!r}, this run has "
                f"{config.get(name)!r}",
                param="resume_from",
            )
    weights = read_lora_file(weights_file)[0] if kind == WEIGHTS_LORA else load_file(weights_file)
    # weights_only: a checkpoint is data; it must never be able to run code when loaded.
    training_state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    return LoadedCheckpoint(step=int(info["step"]), weights=weights, training_state=training_state, info=info)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    # A rename is only durable once the directory entry is flushed (POSIX); Windows cannot open dirs.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
