"""pipeline_speed on the tiny pipelines, through the image engine's real loading: channels-last, fused q/k/v, First-
Block-Cache, torch.compile of the denoiser (compiled with the "eager" backend here: the same graph capture and guards,
in seconds on a CPU; inductor's code generation is the GPU session's to measure) and quantization's missing torchao."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from genfoundry.config import ImageSpeedSettings
from genfoundry.errors import Invalid
from genfoundry.inference import pipeline_speed
from genfoundry.inference.image import LoraSpec
from genfoundry.inference.loader import BaseModelSpec, load_pipeline
from genfoundry.inference.pipeline_speed import apply_image_speed, denoiser_name
from tests.inference.conftest import EngineFactory, image_job, pixels


@pytest.fixture(scope="module")
def specs(tiny_dir: Path) -> dict[str, BaseModelSpec]:
    return {
        family: BaseModelSpec(id=f"tiny-{family}", family=family, source=str(tiny_dir / family))
        for family in ("sd15", "flux")
    }


@pytest.fixture
def eager_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_speed, "_compile_backend", "eager")


def test_channels_last_changes_the_unet_and_vae_memory_format(specs: dict[str, BaseModelSpec]) -> None:
    import torch

    pipe = load_pipeline(specs["sd15"], device="cpu", dtype="float32")
    conv = pipe.unet.conv_in.weight  # type: ignore[attr-defined]
    assert not conv.is_contiguous(memory_format=torch.channels_last)

    report = apply_image_speed(pipe, ImageSpeedSettings(channels_last=True), device="cpu")

    assert report.applied == ["channels_last:unet", "channels_last:vae"]
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)  # type: ignore[attr-defined]
    assert pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)  # type: ignore[attr-defined]


@pytest.mark.parametrize("family", ["sd15", "flux"])
def test_fuse_qkv_fuses_the_denoisers_attention(specs: dict[str, BaseModelSpec], family: str) -> None:
    pipe = load_pipeline(specs[family], device="cpu", dtype="float32")

    report = apply_image_speed(pipe, ImageSpeedSettings(fuse_qkv=True), device="cpu")

    assert report.applied == ["fuse_qkv"] and report.fused_qkv
    denoiser = getattr(pipe, denoiser_name(pipe))
    fused = [m for m in denoiser.modules() if getattr(m, "fused_projections", False)]
    assert fused and all(hasattr(m, "to_qkv") or hasattr(m, "to_kv") for m in fused)


@pytest.mark.parametrize("family", ["sd15", "flux"])
def test_a_fused_base_makes_the_same_images(
    specs: dict[str, BaseModelSpec], make_engine: EngineFactory, family: str
) -> None:
    plain, fused = make_engine(ImageSpeedSettings()), make_engine(ImageSpeedSettings(fuse_qkv=True))

    image = fused.generate_sync(image_job(specs[family]))

    assert fused.stats()["models"][specs[family].id]["speed"]["applied"] == ["fuse_qkv"]
    assert np.abs(pixels(image) - pixels(plain.generate_sync(image_job(specs[family])))).max() <= 1


def test_a_fused_base_refuses_adapters(
    specs: dict[str, BaseModelSpec], make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(ImageSpeedSettings(fuse_qkv=True))

    with pytest.raises(Invalid, match="fuses q/k/v projections"):
        engine.generate_sync(image_job(specs["sd15"], LoraSpec("style", str(tmp_path / "lora.safetensors"))))
    assert engine.stats()["loaded"] == []  # refused before anything was queued or loaded


def test_first_block_cache_hooks_the_flux_transformer_and_skips_the_unet(specs: dict[str, BaseModelSpec]) -> None:
    speed = ImageSpeedSettings(first_block_cache=0.2)
    flux = load_pipeline(specs["flux"], device="cpu", dtype="float32")
    sd15 = load_pipeline(specs["sd15"], device="cpu", dtype="float32")

    flux_report = apply_image_speed(flux, speed, device="cpu")
    sd15_report = apply_image_speed(sd15, speed, device="cpu")

    assert flux_report.applied == ["first_block_cache:0.2"]
    assert flux.transformer.is_cache_enabled  # type: ignore[attr-defined]
    assert sd15_report.applied == []
    assert sd15_report.skipped == ["first_block_cache: diffusers has no cache hooks for UNet2DConditionModel"]


def test_compile_compiles_the_denoiser_in_place(specs: dict[str, BaseModelSpec], eager_compile: None) -> None:
    pipe = load_pipeline(specs["sd15"], device="cpu", dtype="float32")
    unet = pipe.unet  # type: ignore[attr-defined]

    report = apply_image_speed(pipe, ImageSpeedSettings(compile=True), device="cpu")

    assert report.compiled and report.applied == ["compile:max-autotune-no-cudagraphs"]
    assert pipe.unet is unet and unet._compiled_call_impl is not None  # type: ignore[attr-defined]


def test_a_compiled_base_reports_its_warm_up_apart(
    specs: dict[str, BaseModelSpec], make_engine: EngineFactory, eager_compile: None
) -> None:
    plain, compiled = make_engine(ImageSpeedSettings()), make_engine(ImageSpeedSettings(compile=True))
    spec = specs["flux"]

    first = compiled.generate_sync(image_job(spec))
    again = compiled.generate_sync(image_job(spec, seed=4))

    speed = compiled.stats()["models"][spec.id]["speed"]
    assert speed["applied"] == ["compile:max-autotune-no-cudagraphs"]
    assert speed["compile_warmup_batches"] == 1 and speed["compile_warmup_s"] > 0  # the first batch, not the second
    assert np.abs(pixels(first) - pixels(plain.generate_sync(image_job(spec)))).max() <= 1
    assert np.abs(pixels(again) - pixels(plain.generate_sync(image_job(spec, seed=4)))).max() <= 1


def test_quantization_without_torchao_is_a_clear_error(
    specs: dict[str, BaseModelSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torchao" else real_find_spec(name))
    pipe = load_pipeline(specs["sd15"], device="cpu", dtype="float32")

    with pytest.raises(Invalid, match=r"needs torchao, which is not installed: `pip install torchao`"):
        apply_image_speed(pipe, ImageSpeedSettings(quantization="int8-weight-only"), device="cpu")
