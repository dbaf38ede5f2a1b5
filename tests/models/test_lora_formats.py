"""LoRA import/export on real tiny pipelines: every layout loads to the same pixels as the original."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from genfoundry.errors import Invalid, Unprocessable
from genfoundry.models.lora_formats import LoraInfo, export_lora, import_lora

FAMILIES = ("sd15", "sdxl", "flux")
ATTN = ["to_q", "to_k", "to_v", "to_out.0"]
CLIP_ATTN = ["q_proj", "k_proj", "v_proj", "out_proj"]
MAX_PIXEL_DIFF = 2.0


@pytest.fixture(scope="module")
def bases(tiny_dir: Path) -> dict[str, Path]:
    return {family: tiny_dir / family for family in FAMILIES}


@pytest.fixture(scope="module")
def pipes(bases: dict[str, Path]) -> dict[str, object]:
    from diffusers import DiffusionPipeline

    return {family: DiffusionPipeline.from_pretrained(str(path)) for family, path in bases.items()}


def _pipeline_class(family: str) -> type:
    import diffusers

    names = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline"}
    return getattr(diffusers, names[family])


def _make_diffusers_lora(base: Path, family: str, out_dir: Path, *, text_encoder: bool = False, alpha: int = 8) -> Path:
    """Attach seeded random PEFT adapters and save them the way diffusers training scripts do."""
    from diffusers import FluxTransformer2DModel, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel

    torch.manual_seed(1)
    name, cls = ("transformer", FluxTransformer2DModel) if family == "flux" else ("unet", UNet2DConditionModel)
    denoiser = cls.from_pretrained(str(base), subfolder=name)
    denoiser.add_adapter(LoraConfig(r=4, lora_alpha=alpha, target_modules=ATTN, init_lora_weights=False))
    kwargs = {
        f"{name}_lora_layers": get_peft_model_state_dict(denoiser, save_embedding_layers=False),
        # With the config saved, loading applies alpha / r; import must keep that scale.
        f"{name}_lora_adapter_metadata": denoiser.peft_config["default"].to_dict(),
    }
    if text_encoder:
        te = CLIPTextModel.from_pretrained(str(base), subfolder="text_encoder")
        te.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=CLIP_ATTN, init_lora_weights=False))
        kwargs["text_encoder_lora_layers"] = get_peft_model_state_dict(te, save_embedding_layers=False)
        # diffusers needs every component's config once any is saved (else it builds an empty LoraConfig).
        kwargs["text_encoder_lora_adapter_metadata"] = te.peft_config["default"].to_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    _pipeline_class(family).save_lora_weights(str(out_dir), weight_name="lora.safetensors", **kwargs)
    return out_dir / "lora.safetensors"


def _render(pipe: object, lora: Path | None = None) -> np.ndarray:
    """Generate one 64x64 image in 2 steps with a fixed seed, optionally with a LoRA loaded."""
    if lora is not None:
        pipe.load_lora_weights(str(lora), adapter_name="a")
    try:
        out = pipe(
            "a photo of a cat",
            num_inference_steps=2,
            height=64,
            width=64,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
        )
    finally:
        if lora is not None:
            pipe.unload_lora_weights()
    return np.asarray(out.images[0], dtype=np.float64) * 255


def _assert_same_pixels(pipe: object, original: Path, imported: Path) -> None:
    """Loading the imported file gives the original's pixels, and the LoRA visibly changes the image."""
    expected = _render(pipe, original)
    assert np.abs(expected - _render(pipe)).max() > 10, "the test LoRA should change the image"
    assert np.abs(_render(pipe, imported) - expected).max() <= MAX_PIXEL_DIFF


def test_sd15_diffusers_lora_imports_with_its_alpha(bases, pipes, tmp_path):
    original = _make_diffusers_lora(bases["sd15"], "sd15", tmp_path / "src", text_encoder=True)
    dest = tmp_path / "out" / "norm.safetensors"
    info = import_lora(original, family="sd15", base_source=bases["sd15"], dest=dest)

    assert info == LoraInfo("diffusers", 4, 8.0, info.num_tensors, info.matched_modules, ("unet", "text_encoder"))
    assert info.matched_modules == info.num_tensors // 2 > 0
    keys = load_file(dest).keys()
    assert all(k.startswith(("unet.", "text_encoder.")) and ".lora_" in k for k in keys)
    assert list(dest.parent.iterdir()) == [dest]  # no temp file left behind
    _assert_same_pixels(pipes["sd15"], original, dest)


def test_kohya_round_trip_gives_same_images(bases, pipes, tmp_path):
    original = _make_diffusers_lora(bases["sd15"], "sd15", tmp_path / "src", text_encoder=True)
    normalized = tmp_path / "norm.safetensors"
    import_lora(original, family="sd15", base_source=bases["sd15"], dest=normalized)

    assert export_lora(normalized, fmt="diffusers", family="sd15") == normalized.read_bytes()
    kohya = tmp_path / "kohya.safetensors"
    kohya.write_bytes(export_lora(normalized, fmt="kohya", family="sd15"))
    keys = load_file(kohya).keys()
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight" in keys
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight" in keys
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha" in keys

    again = tmp_path / "again.safetensors"
    info = import_lora(kohya, family="sd15", base_source=bases["sd15"], dest=again)
    assert info.source_format == "kohya"
    assert info.components == ("unet", "text_encoder")
    _assert_same_pixels(pipes["sd15"], original, again)


def test_diffusers_kohya_conversion_imports(bases, pipes, tmp_path):
    from diffusers.utils import convert_state_dict_to_kohya

    original = _make_diffusers_lora(bases["sd15"], "sd15", tmp_path / "src")
    kohya = tmp_path / "converted.safetensors"
    save_file(convert_state_dict_to_kohya(load_file(original)), kohya)
    dest = tmp_path / "norm.safetensors"
    info = import_lora(kohya, family="sd15", base_source=bases["sd15"], dest=dest)
    assert (info.source_format, info.components, info.alpha) == ("kohya", ("unet",), 4.0)
    _assert_same_pixels(pipes["sd15"], kohya, dest)


def test_hand_built_kohya_with_alpha_keeps_its_scale(bases, pipes, tmp_path):
    torch.manual_seed(2)
    rank, alpha = 4, 16.0  # alpha / rank = 4: the scale must survive the import
    blocks = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0"
    shapes = {  # (in, out) of the tiny SD 1.5 layers; a 3x3 conv too
        f"{blocks}_attn1_to_q": (32, 32),
        f"{blocks}_attn2_to_k": (32, 32),
        f"{blocks}_attn2_to_out_0": (32, 32),
        "lora_unet_down_blocks_0_resnets_0_conv1": (32, 32),
        # diffusers only recognises kohya text-encoder files that include out_proj, as real ones do.
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (32, 32),
        "lora_te_text_model_encoder_layers_0_self_attn_out_proj": (32, 32),
    }
    state = {}
    for name, (fan_in, fan_out) in shapes.items():
        conv = "conv" in name
        state[f"{name}.lora_down.weight"] = torch.randn(rank, fan_in, *((3, 3) if conv else ())) * 0.1
        state[f"{name}.lora_up.weight"] = torch.randn(fan_out, rank, *((1, 1) if conv else ())) * 0.1
        state[f"{name}.alpha"] = torch.tensor(alpha)
    src = tmp_path / "hand.safetensors"
    save_file(state, src)

    dest = tmp_path / "norm.safetensors"
    info = import_lora(src, family="sd15", base_source=bases["sd15"], dest=dest)
    assert (info.source_format, info.rank, info.alpha) == ("kohya", 4, alpha)
    assert (info.matched_modules, info.components) == (6, ("unet", "text_encoder"))
    assert not any(k.endswith(".alpha") for k in load_file(dest))  # folded into lora_B
    _assert_same_pixels(pipes["sd15"], src, dest)


def test_sdxl_lora_imports_and_round_trips_but_not_for_sd15(bases, pipes, tmp_path):
    original = _make_diffusers_lora(bases["sdxl"], "sdxl", tmp_path / "src")
    dest = tmp_path / "norm.safetensors"
    info = import_lora(original, family="sdxl", base_source=bases["sdxl"], dest=dest)
    assert info.components == ("unet",)
    _assert_same_pixels(pipes["sdxl"], original, dest)

    kohya = tmp_path / "kohya.safetensors"
    kohya.write_bytes(export_lora(dest, fmt="kohya", family="sdxl"))
    import_lora(kohya, family="sdxl", base_source=bases["sdxl"], dest=tmp_path / "again.safetensors")
    _assert_same_pixels(pipes["sdxl"], original, tmp_path / "again.safetensors")

    wrong = tmp_path / "wrong.safetensors"
    with pytest.raises(Invalid, match="another model family"):
        import_lora(original, family="sd15", base_source=bases["sd15"], dest=wrong)
    assert not wrong.exists()


def test_flux_lora_imports_and_kohya_export_is_refused(bases, pipes, tmp_path):
    # A larger scale: the tiny Flux reacts less to a LoRA than the tiny UNets.
    original = _make_diffusers_lora(bases["flux"], "flux", tmp_path / "src", alpha=32)
    dest = tmp_path / "norm.safetensors"
    info = import_lora(original, family="flux", base_source=bases["flux"], dest=dest)
    assert (info.source_format, info.components, info.alpha) == ("diffusers", ("transformer",), 32.0)
    _assert_same_pixels(pipes["flux"], original, dest)

    with pytest.raises(Invalid, match="not supported for flux"):
        export_lora(dest, fmt="kohya", family="flux")
    with pytest.raises(Invalid, match="for flux"):
        import_lora(original, family="sd15", base_source=bases["sd15"], dest=tmp_path / "x.safetensors")


def test_kohya_flux_lora_imports(bases, pipes, tmp_path):
    torch.manual_seed(3)
    rank, alpha, dim = 4, 8.0, 32  # tiny Flux: 2 heads x 16
    state = {
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": torch.randn(rank, dim),
        "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": torch.randn(3 * dim, rank),
        "lora_unet_double_blocks_0_img_attn_qkv.alpha": torch.tensor(alpha),
        "lora_unet_double_blocks_0_img_attn_proj.lora_down.weight": torch.randn(rank, dim),
        "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight": torch.randn(dim, rank),
        "lora_unet_double_blocks_0_img_attn_proj.alpha": torch.tensor(alpha),
    }
    src = tmp_path / "flux_kohya.safetensors"
    save_file(state, src)
    dest = tmp_path / "norm.safetensors"
    info = import_lora(src, family="flux", base_source=bases["flux"], dest=dest)
    assert (info.source_format, info.components, info.alpha) == ("kohya", ("transformer",), alpha)
    assert info.matched_modules == 4  # qkv is split into to_q / to_k / to_v
    _assert_same_pixels(pipes["flux"], src, dest)


def _huge_header_file() -> bytes:
    header = {"unet.a.lora_A.weight": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 42]}}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 64


def _truncated_file() -> bytes:
    from safetensors.torch import save

    whole = save({"unet.a.lora_A.weight": torch.zeros(4, 32), "unet.a.lora_B.weight": torch.zeros(32, 4)})
    return whole[: len(whole) - 100]


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not tensors\n" * 20, b"", _truncated_file(), _huge_header_file()],
    ids=["text", "empty", "truncated", "huge-header"],
)
def test_bad_files_are_unprocessable(bases, tmp_path, content):
    src = tmp_path / "lora.safetensors"
    src.write_bytes(content)
    dest = tmp_path / "norm.safetensors"
    with pytest.raises(Unprocessable):
        import_lora(src, family="sd15", base_source=bases["sd15"], dest=dest)
    assert not dest.exists()


def test_lora_keys_matching_no_layer_are_invalid(bases, tmp_path):
    state = {}
    for i in range(3):
        state[f"unet.random_{i}.block.lora_A.weight"] = torch.randn(4, 32)
        state[f"unet.random_{i}.block.lora_B.weight"] = torch.randn(32, 4)
    src = tmp_path / "random.safetensors"
    save_file(state, src)
    with pytest.raises(Invalid, match="matches no layer"):
        import_lora(src, family="sd15", base_source=bases["sd15"], dest=tmp_path / "out.safetensors")


def test_partly_matching_lora_names_what_did_not_match(bases, tmp_path):
    real = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    state = {f"{real}.lora_A.weight": torch.randn(4, 32), f"{real}.lora_B.weight": torch.randn(32, 4)}
    state |= {
        "unet.nowhere.lora_A.weight": torch.randn(4, 32),
        "unet.nowhere.lora_B.weight": torch.randn(32, 4),
    }
    src = tmp_path / "partial.safetensors"
    save_file(state, src)
    with pytest.raises(Invalid, match=r"only 1 of 2 .*unet\.nowhere"):
        import_lora(src, family="sd15", base_source=bases["sd15"], dest=tmp_path / "out.safetensors")


def test_unknown_export_format_is_invalid(tmp_path):
    src = tmp_path / "x.safetensors"
    save_file({"unet.a.lora_A.weight": torch.zeros(4, 32)}, src)
    with pytest.raises(Invalid, match="format"):
        export_lora(src, fmt="ckpt", family="sd15")
