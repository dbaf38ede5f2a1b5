"""Write tiny diffusers models as single-file checkpoints in the original (non-diffusers) key layout, the inverse
of diffusers' single-file converters, so the tests load them the way a user's A1111 / ComfyUI / BFL files load.

SD 1.5 follows diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py, generalised to any number of
blocks and layers per block (the tiny models have two blocks of one layer); SDXL uses the same UNet / VAE layout
under SGM's `conditioner.embedders` for its two text encoders (the inverse of convert_open_clip_checkpoint); a FLUX
transformer goes to Black Forest Labs' layout with `flux_transformer_to_bfl`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
}
_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
]


def _resnet(rest: str) -> str:
    for diffusers_name, ldm_name in _RESNET:
        if rest.startswith(diffusers_name + "."):
            return ldm_name + rest[len(diffusers_name) :]
    return rest


def unet_to_ldm(state: dict[str, torch.Tensor], layers_per_block: int) -> dict[str, torch.Tensor]:
    """A diffusers UNet2DConditionModel state dict in the LDM layout (without the model prefix)."""
    per = layers_per_block + 1
    up_with_attention = {int(m.group(1)) for k in state if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        top = next((t for t in _UNET_TOP if key.startswith(t + ".")), None)
        if top is not None:
            new = _UNET_TOP[top] + key[len(top) :]
        elif m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            b, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"input_blocks.{1 + b * per + j}.0.{_resnet(rest)}"
        elif m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
            b, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"input_blocks.{1 + b * per + j}.1.{rest}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            new = f"input_blocks.{(int(m.group(1)) + 1) * per}.0.op.{m.group(2)}"
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.+)", key):
            new = f"middle_block.{2 * int(m.group(1))}.{_resnet(m.group(2))}"
        elif m := re.match(r"mid_block\.attentions\.0\.(.+)", key):
            new = f"middle_block.1.{m.group(1)}"
        elif m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            b, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"output_blocks.{b * per + j}.0.{_resnet(rest)}"
        elif m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
            b, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            new = f"output_blocks.{b * per + j}.1.{rest}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            b = int(m.group(1))
            new = f"output_blocks.{b * per + layers_per_block}.{2 if b in up_with_attention else 1}.conv.{m.group(2)}"
        else:
            raise KeyError(f"no LDM name for UNet key {key}")
        out[new] = value
    return out


_VAE_ATTENTION = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def vae_to_ldm(state: dict[str, torch.Tensor], num_blocks: int) -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKL state dict in the LDM layout (without the first_stage_model prefix)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out", "norm_out")
        if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            new = f"encoder.down.{m.group(1)}.block.{m.group(2)}.{m.group(3)}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)", key):
            new = f"encoder.down.{m.group(1)}.downsample.{m.group(2)}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            new = f"decoder.up.{num_blocks - 1 - int(m.group(1))}.block.{m.group(2)}.{m.group(3)}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", key):
            new = f"decoder.up.{num_blocks - 1 - int(m.group(1))}.upsample.{m.group(2)}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
            new = f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{m.group(3)}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
            rest = m.group(2)
            for diffusers_name, ldm_name in _VAE_ATTENTION:
                if rest.startswith(diffusers_name + "."):
                    rest = ldm_name + rest[len(diffusers_name) :]
            new = f"{m.group(1)}.mid.attn_1.{rest}"
            if value.ndim == 2:  # LDM keeps the attention projections as 1x1 convolutions
                value = value.reshape(*value.shape, 1, 1)
        new = new.replace("conv_shortcut", "nin_shortcut")
        out[new] = value
    return out


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors"))
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def write_sd15_single_file(pipeline_dir: Path, dest: Path) -> Path:
    """The tiny SD 1.5 pipeline as one A1111-style checkpoint: model.diffusion_model / first_stage_model /
    cond_stage_model.transformer keys."""
    unet = unet_to_ldm(_weights(pipeline_dir / "unet"), _config(pipeline_dir / "unet")["layers_per_block"])
    vae = vae_to_ldm(_weights(pipeline_dir / "vae"), len(_config(pipeline_dir / "vae")["down_block_types"]))
    # The original layout is the pre-5.6 transformers one, where CLIPTextModel wrapped a `text_model`.
    text = {
        k if k.startswith("text_model.") else f"text_model.{k}": v
        for k, v in _weights(pipeline_dir / "text_encoder").items()
    }
    state = {
        **{f"model.diffusion_model.{k}": v for k, v in unet.items()},
        **{f"first_stage_model.{k}": v for k, v in vae.items()},
        **{f"cond_stage_model.transformer.{k}": v for k, v in text.items()},
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(dest))
    return dest


def write_ae_single_file(vae_dir: Path, dest: Path) -> Path:
    """A VAE as a BFL-style `ae.sft`: LDM keys without a prefix."""
    state = vae_to_ldm(_weights(vae_dir), len(_config(vae_dir)["down_block_types"]))
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(dest))
    return dest


def write_flux_share(flux_dir: Path, folder: Path) -> None:
    """seed 001's share from the tiny FLUX: flux1-dev.sft, ae.sft (LDM layout), clip_l.safetensors (transformers
    layout with the `text_model.` wrapper, as ComfyUI ships it, plus the position_ids buffer older transformers
    saved) and t5xxl_fp16.safetensors (T5EncoderModel layout).

    The transformer is written in the diffusers layout: diffusers' BFL-to-diffusers converter assumes FLUX's full
    size (inner_dim 3072), so a tiny transformer in the BFL layout cannot be read by it; from_single_file takes a
    file already in the diffusers layout as is."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in _weights(flux_dir / "transformer").items()}, str(folder / "flux1-dev.sft"))
    write_ae_single_file(flux_dir / "vae", folder / "ae.sft")
    clip = {
        k if k.startswith("text_model.") else f"text_model.{k}": v
        for k, v in _weights(flux_dir / "text_encoder").items()
    }
    clip["text_model.embeddings.position_ids"] = torch.arange(
        len(clip["text_model.embeddings.position_embedding.weight"])
    )[None]
    save_file({k: v.contiguous() for k, v in clip.items()}, str(folder / "clip_l.safetensors"))
    t5 = {
        k: v.contiguous()
        for k, v in _weights(flux_dir / "text_encoder_2").items()
        if k != "encoder.embed_tokens.weight"
    }
    save_file(t5, str(folder / "t5xxl_fp16.safetensors"))


_OPEN_CLIP_LAYER = [
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
    ("self_attn.out_proj.", "attn.out_proj."),
]


def clip_to_open_clip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModelWithProjection state dict in OpenCLIP's layout (SGM's `model.`, no prefix): q/k/v
    fused into `attn.in_proj_*`, `text_projection` stored transposed (a matrix, not a Linear weight)."""
    state = {k.removeprefix("text_model."): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {
        "token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
        "positional_embedding": state.pop("embeddings.position_embedding.weight"),
        "ln_final.weight": state.pop("final_layer_norm.weight"),
        "ln_final.bias": state.pop("final_layer_norm.bias"),
        "text_projection": state.pop("text_projection.weight").T,
    }
    layers = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))})
    for n in layers:
        layer = f"encoder.layers.{n}."
        for part in ("weight", "bias"):
            qkv = [state.pop(f"{layer}self_attn.{p}_proj.{part}") for p in "qkv"]
            out[f"transformer.resblocks.{n}.attn.in_proj_{part}"] = torch.cat(qkv)
        for key in [k for k in state if k.startswith(layer)]:
            rest = key[len(layer) :]
            diffusers_name, open_clip_name = next(pair for pair in _OPEN_CLIP_LAYER if rest.startswith(pair[0]))
            out[f"transformer.resblocks.{n}.{open_clip_name}{rest[len(diffusers_name) :]}"] = state.pop(key)
    if state:
        raise KeyError(f"no OpenCLIP name for text encoder keys {sorted(state)}")
    return out


def write_sdxl_single_file(pipeline_dir: Path, dest: Path) -> Path:
    """The tiny SDXL pipeline as one checkpoint in SGM's layout, as stabilityai ships sd_xl_base_1.0.safetensors:
    model.diffusion_model (with label_emb) / first_stage_model / conditioner.embedders.0.transformer (CLIP-L, the
    transformers layout) / conditioner.embedders.1.model (OpenCLIP bigG)."""
    unet = unet_to_ldm(_weights(pipeline_dir / "unet"), _config(pipeline_dir / "unet")["layers_per_block"])
    vae = vae_to_ldm(_weights(pipeline_dir / "vae"), len(_config(pipeline_dir / "vae")["down_block_types"]))
    clip_l = {
        k if k.startswith("text_model.") else f"text_model.{k}": v
        for k, v in _weights(pipeline_dir / "text_encoder").items()
    }
    open_clip = clip_to_open_clip(_weights(pipeline_dir / "text_encoder_2"))
    state = {
        **{f"model.diffusion_model.{k}": v for k, v in unet.items()},
        **{f"first_stage_model.{k}": v for k, v in vae.items()},
        **{f"conditioner.embedders.0.transformer.{k}": v for k, v in clip_l.items()},
        **{f"conditioner.embedders.1.model.{k}": v for k, v in open_clip.items()},
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(dest))
    return dest


_FLUX_TOP = {
    "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
    "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
    "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
    "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
    "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
    "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
    "context_embedder": "txt_in",
    "x_embedder": "img_in",
    "proj_out": "final_layer.linear",
}
_FLUX_DOUBLE = {
    "norm1.linear": "img_mod.lin",
    "norm1_context.linear": "txt_mod.lin",
    "attn.norm_q": "img_attn.norm.query_norm",
    "attn.norm_k": "img_attn.norm.key_norm",
    "attn.norm_added_q": "txt_attn.norm.query_norm",
    "attn.norm_added_k": "txt_attn.norm.key_norm",
    "ff.net.0.proj": "img_mlp.0",
    "ff.net.2": "img_mlp.2",
    "ff_context.net.0.proj": "txt_mlp.0",
    "ff_context.net.2": "txt_mlp.2",
    "attn.to_out.0": "img_attn.proj",
    "attn.to_add_out": "txt_attn.proj",
}
_FLUX_SINGLE = {
    "norm.linear": "modulation.lin",
    "attn.norm_q": "norm.query_norm",
    "attn.norm_k": "norm.key_norm",
    "proj_out": "linear2",
}
# Projections BFL keeps fused in one Linear, in this order.
_FLUX_DOUBLE_FUSED = {
    "img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
}
_FLUX_SINGLE_FUSED = {"linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")}


def flux_transformer_to_bfl(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers FluxTransformer2DModel state dict in Black Forest Labs' layout (flux1-dev.sft): the inverse of
    diffusers' convert_flux_transformer_checkpoint_to_diffusers."""
    state = dict(state)
    out: dict[str, torch.Tensor] = {}
    for diffusers_block, bfl_block, fused in (
        ("transformer_blocks", "double_blocks", _FLUX_DOUBLE_FUSED),
        ("single_transformer_blocks", "single_blocks", _FLUX_SINGLE_FUSED),
    ):
        for i in sorted({int(m.group(1)) for k in state if (m := re.match(rf"{diffusers_block}\.(\d+)\.", k))}):
            for bfl_name, parts in fused.items():
                for suffix in ("weight", "bias"):
                    tensors = [state.pop(f"{diffusers_block}.{i}.{part}.{suffix}") for part in parts]
                    out[f"{bfl_block}.{i}.{bfl_name}.{suffix}"] = torch.cat(tensors)
    for key, value in state.items():
        name, suffix = key.rsplit(".", 1)
        if m := re.match(r"transformer_blocks\.(\d+)\.(.+)", name):
            new = f"double_blocks.{m.group(1)}.{_FLUX_DOUBLE[m.group(2)]}"
        elif m := re.match(r"single_transformer_blocks\.(\d+)\.(.+)", name):
            new = f"single_blocks.{m.group(1)}.{_FLUX_SINGLE[m.group(2)]}"
        elif name == "norm_out.linear":  # diffusers splits this projection (scale, shift), BFL (shift, scale)
            scale, shift = value.chunk(2, dim=0)
            new, value = "final_layer.adaLN_modulation.1", torch.cat([shift, scale])
        else:
            new = _FLUX_TOP[name]
        out[f"{new}.{'scale' if new.endswith('_norm') else suffix}"] = value
    return out
