"""Import and export of LoRA adapter files (diffusers/PEFT and kohya/A1111/ComfyUI layouts)."""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid, ModelUnavailable, Unprocessable
from genfoundry.model_files import config_source

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

    StateDict = dict[str, torch.Tensor]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("diffusers", "kohya")
# Below this share of LoRA layers found in the base, the file is for some other model, not a variant.
_MIN_MATCHED_SHARE = 0.9
_COMPONENTS = ("unet", "transformer", "text_encoder", "text_encoder_2")
_LORA_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_B.bias", ".lora_magnitude_vector")
# diffusers' own name for the LoraConfig it stores in a safetensors header (save_lora_weights).
_DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"


@dataclass(frozen=True)
class _Family:
    pipeline: str
    denoiser: str
    denoiser_class: str
    text_encoders: tuple[str, ...]


# Flux's text_encoder_2 is T5, which diffusers' Flux loader never puts a LoRA on.
_FAMILIES = {
    "sd15": _Family("StableDiffusionPipeline", "unet", "UNet2DConditionModel", ("text_encoder",)),
    "sdxl": _Family("StableDiffusionXLPipeline", "unet", "UNet2DConditionModel", ("text_encoder", "text_encoder_2")),
    "flux": _Family("FluxPipeline", "transformer", "FluxTransformer2DModel", ("text_encoder",)),
}


@dataclass(frozen=True)
class LoraInfo:
    """What import_lora found in a LoRA file and wrote to the normalized one."""

    source_format: str
    rank: int
    alpha: float | None
    num_tensors: int
    matched_modules: int
    components: tuple[str, ...]


def import_lora(src: Path, *, family: str, base_source: str | Path, dest: Path) -> LoraInfo:
    """Validate a LoRA file against a base model and write it to `dest` in diffusers' PEFT layout."""
    fam = _family(family)
    raw, file_meta = _read_safetensors(Path(src))
    source_format = _detect_format(raw)
    other = _foreign_family(raw.keys(), family)
    if other is not None:
        raise Invalid(f"this LoRA is for {other}, not for the {family} base {base_source}")
    if source_format == "peft":
        # A bare PEFT adapter (adapter_model.safetensors) carries no component name: it is the denoiser's.
        raw = {f"{fam.denoiser}.{k.removeprefix('base_model.model.')}": v for k, v in raw.items()}

    label = f"{family} ({base_source})"
    models = {fam.denoiser: _meta_model(fam, fam.denoiser, base_source)}
    state, alphas = _to_diffusers(raw, fam, family, models[fam.denoiser].config)
    components = sorted({k.split(".", 1)[0] for k in state}, key=_COMPONENTS.index)
    for component in components:
        if component not in (fam.denoiser, *fam.text_encoders):
            raise Invalid(f"this LoRA has {component} weights, which the {family} base has none of")
        if component not in models:
            models[component] = _meta_model(fam, component, base_source)

    normalized: StateDict = {}
    total = matched = 0
    unmatched: list[str] = []
    for component in components:
        sd = _component_to_peft(state, component, fam, models[component], alphas, file_meta)
        modules = sorted({k.split(".lora_")[0] for k in sd})
        layers = _lora_target_layers(models[component])
        total += len(modules)
        unmatched += [f"{component}.{m}" for m in modules if m not in layers]
        for module in (m for m in modules if m in layers):
            _check_shapes(component, module, sd, layers[module], family)
            matched += 1
            normalized.update({f"{component}.{k}": v for k, v in sd.items() if k.split(".lora_")[0] == module})
    if matched == 0:
        raise Invalid(f"this LoRA matches no layer of base {label}; first keys: {', '.join(list(raw)[:3])}")
    if matched < _MIN_MATCHED_SHARE * total:
        raise Invalid(
            f"only {matched} of {total} LoRA layers match a layer of base {label}; "
            f"unmatched: {', '.join(unmatched[:5])}"
        )
    if unmatched:
        logger.warning("dropping %d LoRA layers absent from base %s: %s", len(unmatched), label, unmatched[:5])

    rank = _common_rank(normalized)
    alpha = _source_alpha(raw, file_meta)
    metadata = {
        "format": "pt",
        "genfoundry_rank": str(rank),
        "genfoundry_alpha": "none" if alpha is None else repr(alpha),
        "genfoundry_source_format": source_format,
        "genfoundry_family": family,
    }
    _write_atomic(Path(dest), normalized, metadata)
    return LoraInfo(
        source_format=source_format,
        rank=rank,
        alpha=alpha,
        num_tensors=len(normalized),
        matched_modules=matched,
        components=tuple(components),
    )


def export_lora(src: Path, *, fmt: str, family: str) -> bytes:
    """Return a normalized LoRA file as diffusers or kohya (A1111/ComfyUI) safetensors bytes."""
    if fmt not in EXPORT_FORMATS:
        raise Invalid(f"unknown LoRA export format {fmt!r}; expected one of {EXPORT_FORMATS}", param="format")
    _family(family)
    state, _ = _read_safetensors(Path(src))
    if not all(k.split(".", 1)[0] in _COMPONENTS and k.endswith(_LORA_SUFFIXES) for k in state):
        raise Unprocessable("this file is not a normalized LoRA; import it first")
    if fmt == "diffusers":
        return Path(src).read_bytes()
    # diffusers converts kohya Flux files in (fused qkv, sd-scripts names) but has no converter back out.
    if family == "flux":
        raise Invalid("kohya export is not supported for flux", param="format")
    if any(k.endswith(".lora_magnitude_vector") for k in state):
        raise Invalid("kohya export of DoRA adapters is not supported", param="format")

    import torch
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from safetensors.torch import save

    # A1111/ComfyUI/kohya name CLIP layers text_model.encoder...; transformers 5 flattened that prefix away.
    for te in ("text_encoder.", "text_encoder_2."):
        state = {
            te + "text_model." + k.removeprefix(te) if k.startswith(te) and ".text_model." not in k else k: v
            for k, v in state.items()
        }
    kohya = convert_state_dict_to_kohya(state)
    out: StateDict = {}
    for key, value in kohya.items():
        if family == "sd15" and key.startswith("lora_te1_"):
            key = "lora_te_" + key.removeprefix("lora_te1_")  # SD 1.x kohya files have one text encoder
        # kohya's scripts store alpha as a float scalar; diffusers' converter makes an int64 one.
        out[key] = value.to(torch.float32) if key.endswith(".alpha") else value.contiguous()
    rank = _common_rank(state)
    metadata = {"format": "pt", "ss_network_dim": str(rank), "ss_network_alpha": str(rank)}
    return bytes(save(out, metadata=metadata))


def _family(family: str) -> _Family:
    """Look up a family or raise Invalid."""
    if family not in _FAMILIES:
        raise Invalid(f"unknown model family {family!r}; expected one of {sorted(_FAMILIES)}", param="family")
    return _FAMILIES[family]


def _read_safetensors(path: Path) -> tuple[StateDict, dict[str, str]]:
    """Read all tensors and the header metadata; anything but a sound safetensors file is Unprocessable."""
    import safetensors
    import torch
    from safetensors import safe_open

    # safe_open checks the header against the file size before reading, so a header that declares
    # huge tensors fails here instead of allocating.
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (safetensors.SafetensorError, OSError, ValueError) as exc:
        raise Unprocessable(f"the LoRA file is not a valid safetensors file: {exc}") from exc
    if not tensors:
        raise Unprocessable("the LoRA file contains no tensors")
    # kohya scripts (and diffusers' own kohya converter) may store `.alpha` as an integer scalar.
    not_float = [k for k, v in tensors.items() if not torch.is_floating_point(v) and not k.endswith(".alpha")]
    if not_float:
        raise Unprocessable(f"LoRA tensors must be floating point, not: {', '.join(not_float[:5])}")
    return tensors, metadata


def _detect_format(state: StateDict) -> str:
    """Name the layout of a raw LoRA state dict: kohya, diffusers, or bare PEFT."""
    keys = list(state)
    kohya_prefixes = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
    if any(k.startswith(kohya_prefixes) or ".lora_down." in k or ".lora_up." in k for k in keys):
        return "kohya"
    if all(k.split(".", 1)[0] in _COMPONENTS for k in keys):
        return "diffusers"
    if any(".lora_A." in k or ".lora_B." in k for k in keys):
        return "peft"
    raise Unprocessable(
        f"unknown LoRA layout: no kohya (lora_down/lora_up) or diffusers/PEFT (lora_A/lora_B) keys; "
        f"first keys: {', '.join(list(state)[:3])}"
    )


def _foreign_family(keys: Iterable[str], family: str) -> str | None:
    """Name the family whose unmistakable key names a LoRA carries, if that is not `family`."""
    keys = list(keys)
    flux = any(k.startswith("transformer.") or "double_blocks" in k or "single_blocks" in k for k in keys)
    unet_blocks = tuple(f"lora_unet_{b}" for b in ("down_", "up_", "mid_", "input_", "output_", "middle_"))
    unet = any(k.startswith(("unet.", *unet_blocks)) for k in keys)
    te2 = any(k.startswith(("text_encoder_2.", "lora_te2_")) for k in keys)
    if family != "flux" and flux:
        return "flux"
    if family == "flux" and unet:
        return "a Stable Diffusion UNet (sd15/sdxl)"
    if family != "sdxl" and te2:
        return "sdxl (it has weights for a second CLIP text encoder)"
    return None


def _to_diffusers(raw: StateDict, fam: _Family, family: str, unet_config: Any) -> tuple[StateDict, Any]:
    """Convert any layout diffusers' family loader knows into prefixed diffusers keys plus network alphas."""
    import diffusers

    loader = getattr(diffusers, fam.pipeline)
    # The loaders pop keys from the dict they convert, so they get a copy.
    try:
        if family == "flux":
            state, alphas = loader.lora_state_dict(dict(raw), return_alphas=True)
        elif family == "sdxl":
            # SDXL's loader remaps kohya's sgm block numbers with the UNet config, as load_lora_weights does.
            state, alphas = loader.lora_state_dict(dict(raw), unet_config=unet_config)
        else:
            state, alphas = loader.lora_state_dict(dict(raw))
    except (ValueError, KeyError, IndexError, NotImplementedError, RuntimeError) as exc:
        raise Unprocessable(f"could not convert this LoRA's keys for {family}: {exc}") from exc
    unknown = [k for k in state if k.split(".", 1)[0] not in _COMPONENTS or "lora" not in k]
    if unknown:
        raise Unprocessable(f"unexpected keys in the LoRA for {family}: {', '.join(unknown[:5])}")
    return state, alphas


def _component_to_peft(
    state: StateDict, component: str, fam: _Family, model: Any, alphas: Any, file_meta: dict[str, str]
) -> StateDict:
    """One component's keys in PEFT naming, with the LoRA scale load_lora_weights would use folded in."""
    from diffusers.utils.peft_utils import _create_lora_config
    from diffusers.utils.state_dict_utils import (
        convert_state_dict_to_diffusers,
        convert_state_dict_to_peft,
        convert_unet_state_dict_to_peft,
    )

    prefix = f"{component}."
    sd = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    alphas = {k.removeprefix(prefix): v for k, v in (alphas or {}).items() if k.split(".")[0] == component}
    # Each step below mirrors diffusers' load_lora_adapter / _load_lora_into_text_encoder, so the
    # LoraConfig (and with it the scale) is the one loading the original file would build.
    try:
        if component == fam.denoiser:
            if "lora_A" not in next(iter(sd)):
                sd = convert_unet_state_dict_to_peft(sd)
            rank = {f"^{k}": v.shape[1] for k, v in sd.items() if "lora_B" in k and v.ndim > 1}
        else:
            sd = convert_state_dict_to_peft(convert_state_dict_to_diffusers(sd))
            if not hasattr(model, "text_model"):
                sd = {k.removeprefix("text_model."): v for k, v in sd.items()}
            ends = (".q_proj", ".k_proj", ".v_proj", ".out_proj", ".fc1", ".fc2")
            names = (f"{n}.lora_B.weight" for n, _ in model.named_modules() if n.endswith(ends))
            rank = {n: sd[n].shape[1] for n in names if n in sd}
        _check_pairs(component, sd)
        config = _create_lora_config(
            sd,
            alphas or None,
            _diffusers_metadata(file_meta, prefix),
            rank,
            is_unet=component == fam.denoiser,
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise Unprocessable(f"could not read the LoRA's {component} weights: {exc}") from exc
    return {k: _scaled(v, config, k.split(".lora_")[0]) if ".lora_B." in k else v for k, v in sd.items()}


def _check_pairs(component: str, sd: StateDict) -> None:
    """Raise Unprocessable unless every LoRA layer has a lora_A and a lora_B of one rank."""
    bad = [k for k in sd if not k.endswith(_LORA_SUFFIXES)]
    if bad:
        raise Unprocessable(f"unexpected keys in the LoRA's {component} weights: {', '.join(bad[:5])}")
    for module in sorted({k.split(".lora_")[0] for k in sd}):
        down, up = sd.get(f"{module}.lora_A.weight"), sd.get(f"{module}.lora_B.weight")
        if down is None or up is None:
            raise Unprocessable(f"LoRA layer {component}.{module} lacks its lora_A or lora_B weight")
        if down.ndim < 2 or up.ndim != down.ndim or down.shape[0] != up.shape[1]:
            raise Unprocessable(
                f"LoRA layer {component}.{module} has lora_A {tuple(down.shape)} and lora_B "
                f"{tuple(up.shape)}, which are not one low-rank pair"
            )


def _diffusers_metadata(file_meta: dict[str, str], prefix: str) -> dict[str, Any] | None:
    """The LoraConfig kwargs diffusers' save_lora_weights stored for one component, if any."""
    raw = file_meta.get(_DIFFUSERS_METADATA_KEY)
    if not raw:
        return None
    try:
        packed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Unprocessable(f"the LoRA file's {_DIFFUSERS_METADATA_KEY} is not JSON") from exc
    if not isinstance(packed, dict):
        raise Unprocessable(f"the LoRA file's {_DIFFUSERS_METADATA_KEY} is not an object")
    own = {k.removeprefix(prefix): v for k, v in packed.items() if k.startswith(prefix)}
    return own or None


def _scaled(tensor: torch.Tensor, config: Any, module: str) -> torch.Tensor:
    """Multiply a lora_B tensor by PEFT's scale for `module`, so the saved file loads at scale 1."""
    from peft.utils.other import get_pattern_key

    r = config.rank_pattern.get(get_pattern_key(config.rank_pattern.keys(), module), config.r)
    alpha = config.alpha_pattern.get(get_pattern_key(config.alpha_pattern.keys(), module), config.lora_alpha)
    scale = alpha / math.sqrt(r) if config.use_rslora else alpha / r
    if scale == 1:
        return tensor
    scaled: torch.Tensor = (tensor.float() * scale).to(tensor.dtype)
    return scaled


def _meta_model(fam: _Family, component: str, base_source: str | Path) -> Any:
    """Instantiate one base component from its config on the meta device: module names, no weights."""
    import diffusers
    import transformers
    from accelerate import init_empty_weights

    source = config_source(str(base_source))  # a single-file base's module names come from its config source
    try:
        if component == fam.denoiser:
            cls = getattr(diffusers, fam.denoiser_class)
            config = cls.load_config(source, subfolder=component, local_files_only=True)
            with init_empty_weights():
                return cls.from_config(config)
        te_config = transformers.AutoConfig.from_pretrained(source, subfolder=component, local_files_only=True)
        te_cls = getattr(transformers, (te_config.architectures or ["AutoModel"])[0], None)
        with init_empty_weights():
            if te_cls is None or te_cls is transformers.AutoModel:
                return transformers.AutoModel.from_config(te_config)
            return te_cls(te_config)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"base model {source} has no {component} config available locally") from exc


def _lora_target_layers(model: Any) -> dict[str, Any]:
    """The base's layers a LoRA can sit on, by module name."""
    from torch import nn

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return {name: m for name, m in model.named_modules() if isinstance(m, kinds)}


def _check_shapes(component: str, module: str, sd: StateDict, layer: Any, family: str) -> None:
    """Raise Invalid when a LoRA layer's shapes cannot sit on the base layer of the same name."""
    from torch import nn

    down, up = sd[f"{module}.lora_A.weight"], sd[f"{module}.lora_B.weight"]
    if isinstance(layer, nn.Linear):
        want, ndim = (layer.in_features, layer.out_features), 2
    else:
        want, ndim = (layer.in_channels, layer.out_channels), layer.weight.ndim
    got = (int(down.shape[1]), int(up.shape[0]))
    if got != want or down.ndim != ndim:
        raise Invalid(
            f"LoRA layer {component}.{module} (in {got[0]}, out {got[1]}) does not fit the {family} base "
            f"layer (in {want[0]}, out {want[1]}): this LoRA was made for another model family"
        )


def _common_rank(state: StateDict) -> int:
    """The most common rank among lora_A tensors."""
    ranks = [int(v.shape[0]) for k, v in state.items() if k.endswith(".lora_A.weight")]
    return collections.Counter(ranks).most_common(1)[0][0] if ranks else 0


def _source_alpha(raw: StateDict, file_meta: dict[str, str]) -> float | None:
    """The alpha the source file declared (kohya `.alpha` keys or diffusers metadata), if any."""
    alphas = [float(v.item()) for k, v in raw.items() if k.endswith(".alpha") and v.numel() == 1]
    if alphas:
        return collections.Counter(alphas).most_common(1)[0][0]
    for prefix in _COMPONENTS:
        meta = _diffusers_metadata(file_meta, f"{prefix}.")
        if meta and isinstance(meta.get("lora_alpha"), int | float):
            return float(meta["lora_alpha"])
    return None


def _write_atomic(dest: Path, tensors: StateDict, metadata: dict[str, str]) -> None:
    """Write a safetensors file so that readers see either the old file or the complete new one."""
    from safetensors.torch import save_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # Clone: converters may hand back views sharing storage, which safetensors refuses to save.
        save_file({k: v.detach().clone().contiguous() for k, v in sorted(tensors.items())}, tmp, metadata)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
