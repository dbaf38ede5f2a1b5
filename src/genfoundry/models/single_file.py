"""Load a base pipeline from single-file checkpoints (A1111 / ComfyUI / BFL layouts) through diffusers'
`from_single_file`, with every config, tokenizer and scheduler read from the base's local `config` source, so
nothing is downloaded.

SD 1.5 / SDXL: the checkpoint is a whole pipeline (`<Pipeline>.from_single_file`; SDXL's OpenCLIP encoder is read
from its own keys, see `_sdxl_open_clip`). FLUX: the checkpoint is the transformer
(`FluxTransformer2DModel.from_single_file`); `ae.sft` is the VAE (`AutoencoderKL.from_single_file`); `clip_l` /
`t5xxl` files are text encoders in the transformers layout. A component no file names comes from the config source's
own weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.model_files import SingleFileBase

PIPELINES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline"}
# Pipeline components a single file may replace, by family, and the diffusers model class that reads it.
DIFFUSERS_COMPONENTS = {"unet": "UNet2DConditionModel", "vae": "AutoencoderKL", "transformer": "FluxTransformer2DModel"}
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."


def _dtype_kwarg() -> str:
    """diffusers renamed `torch_dtype` to `dtype` (the old name warns); support both generations."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def _read(path: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(path)


def _read_as(path: str, dtype: Any) -> dict[str, Any]:
    """The file's tensors, each cast to `dtype` as it is read, so the file's own copy of one is freed before the next:
    a t5xxl_fp16 loaded in bfloat16 peaks at one copy, not two. Buffers transformers rebuilds (`position_ids`,
    kept by older files) are left out."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as file:
        keys = [key for key in file.keys() if not key.endswith("position_ids")]  # noqa: SIM118 - not a mapping
        return {
            key: tensor.to(dtype) if (tensor := file.get_tensor(key)).is_floating_point() else tensor for key in keys
        }


def _config_kwargs(config: str) -> dict[str, Any]:
    return {"config": str(Path(config).expanduser()) if Path(config).expanduser().is_dir() else config}


def _diffusers_component(name: str, path: str, config: str, dtype: Any) -> Any:
    import diffusers

    cls = getattr(diffusers, DIFFUSERS_COMPONENTS[name])
    return cls.from_single_file(
        _read(path), subfolder=name, local_files_only=True, **{_dtype_kwarg(): dtype}, **_config_kwargs(config)
    )


def _text_encoder(name: str, path: str, config: str, dtype: Any) -> Any:
    """A CLIP / T5 encoder from a file in the transformers layout (ComfyUI's clip_l, t5xxl_fp16), or an LDM-prefixed
    CLIP, built from the config source's config for `name`.

    The file's tensors, cast as they are read, go to `from_pretrained(state_dict=...)`: no random weights are made
    first, so a 9 GB t5xxl peaks at one copy of its weights (building the model first peaked near three)."""
    import transformers
    from accelerate import init_empty_weights

    model_config = transformers.AutoConfig.from_pretrained(config, subfolder=name, local_files_only=True)
    cls = getattr(transformers, (model_config.architectures or ["AutoModel"])[0])
    with init_empty_weights():
        own = set(cls(model_config).state_dict())  # the names only; its parameters are on the meta device
    state = _read_as(path, dtype)
    for prefix in ("cond_stage_model.transformer.", "conditioner.embedders.0.transformer.", ""):
        for strip_text_model in (False, True):
            renamed = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            if strip_text_model:
                renamed = {k.removeprefix("text_model."): v for k, v in renamed.items()}
            if renamed and set(renamed) <= own and len(renamed) * 2 > len(own):
                if "shared.weight" in renamed and "encoder.embed_tokens.weight" in own:
                    renamed.setdefault("encoder.embed_tokens.weight", renamed["shared.weight"])
                missing = sorted(own - set(renamed))
                if missing:
                    raise Invalid(f"{name} file {Path(path).name} lacks weights such as {missing[0]}")
                del state
                model = cls.from_pretrained(None, config=model_config, state_dict=renamed, dtype=dtype)
                return model.eval()
    raise Invalid(f"{name} file {Path(path).name} does not hold a {cls.__name__} for this base", param=name)


def _sdxl_open_clip(path: str, config: str, dtype: Any) -> Any:
    """SDXL's text_encoder_2 (OpenCLIP bigG, SGM's `conditioner.embedders.1.model.*`) through diffusers' converter.

    diffusers' pipeline loader tells the two encoders apart by width (CLIP-L 768, bigG 1280), so with equal widths
    it reads CLIP-L's keys for both; handing it the OpenCLIP keys alone (read without loading the rest) picks the
    right branch whatever the widths, with the same result on a real checkpoint."""
    import transformers
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from safetensors import safe_open

    with safe_open(path, framework="pt") as file:
        keys = [key for key in file.keys() if key.startswith(SDXL_OPEN_CLIP_PREFIX)]  # noqa: SIM118 - not a mapping
        state = {key: file.get_tensor(key) for key in keys}
    if not state:
        raise ValueError(f"no {SDXL_OPEN_CLIP_PREFIX}* weights (SDXL's OpenCLIP text encoder) in the checkpoint")
    return create_diffusers_clip_model_from_ldm(
        transformers.CLIPTextModelWithProjection,
        state,
        subfolder="text_encoder_2",
        torch_dtype=dtype,
        local_files_only=True,
        **_config_kwargs(config),
    )


def load_single_file_pipeline(family: str, base: SingleFileBase, *, dtype: Any, **components: Any) -> Any:
    """The family's text-to-image pipeline from `base`'s files; `components` (e.g. unet=...) replace its own.

    Runs under the caller's module-build lock; file and config errors become ModelUnavailable."""
    import diffusers

    pipeline_cls = getattr(diffusers, PIPELINES[family])
    kwargs: dict[str, Any] = {}
    if family == "sd15":
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    try:
        for name, path in base.components.items():
            if name in components:
                continue
            if name in TEXT_ENCODERS:
                components[name] = _text_encoder(name, path, base.config, dtype)
            else:
                components[name] = _diffusers_component(name, path, base.config, dtype)
        if family == "flux":
            if "transformer" not in components:
                components["transformer"] = _diffusers_component("transformer", base.checkpoint, base.config, dtype)
            pipe = pipeline_cls.from_pretrained(
                base.config, local_files_only=True, **{_dtype_kwarg(): dtype}, **kwargs, **components
            )
        else:
            if family == "sdxl" and "text_encoder_2" not in components:
                components["text_encoder_2"] = _sdxl_open_clip(base.checkpoint, base.config, dtype)
            pipe = pipeline_cls.from_single_file(
                base.checkpoint,
                local_files_only=True,
                **{_dtype_kwarg(): dtype},
                **_config_kwargs(base.config),
                **kwargs,
                **components,
            )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        files = ", ".join(Path(p).name for p in (base.checkpoint, *base.components.values()))
        raise ModelUnavailable(f"single-file base ({files}) cannot be loaded: {reason}") from exc
    return pipe
