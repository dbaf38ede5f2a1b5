"""genfoundry.devices: every engine's device and dtype choice, on a CPU-only machine and on (simulated) GPUs with and
without bfloat16; explicit settings win; bad device strings are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genfoundry import devices
from genfoundry.config import Settings
from genfoundry.errors import Invalid
from genfoundry.inference import caption, loader, text_loader
from genfoundry.inference.caption import CaptionerSpec
from genfoundry.inference.loader import BaseModelSpec
from genfoundry.inference.text_loader import TextModelSpec
from genfoundry.router.encoder import TextEncoder
from genfoundry.training.lora_setup import resolve_mixed_precision
from genfoundry.training.sft_config import SftTrainingConfig
from genfoundry.training.sft_model import resolve_device


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees a CUDA GPU with bfloat16 (an A100 / H100)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)


@pytest.fixture
def old_gpu(gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees a CUDA GPU without bfloat16 (a V100 / T4)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def auto_dtypes() -> dict[str, str]:
    """Each kind's choice when neither the model nor the server names a dtype, on the device `auto` resolves to."""
    device = devices.resolve_device("auto")
    default = devices.engine_dtype("auto", device)
    return {kind: devices.model_dtype("auto", default, device, kind) for kind in devices.MODEL_KINDS}


def test_cpu_is_float32_for_every_kind(no_gpu: None) -> None:
    assert devices.resolve_device("auto") == "cpu"
    assert set(auto_dtypes().values()) == {"float32"}


def test_gpu_picks_fp16_for_sd_bf16_for_flux_and_text(gpu: None) -> None:
    assert devices.resolve_device("auto") == "cuda"
    assert auto_dtypes() == {
        "sd15": "float16",
        "sdxl": "float16",
        "flux": "bfloat16",
        "text": "bfloat16",
        "captioner": "bfloat16",
        "encoder": "float32",
    }


def test_gpu_without_bf16_falls_back_to_fp16(old_gpu: None) -> None:
    assert auto_dtypes() == {
        "sd15": "float16",
        "sdxl": "float16",
        "flux": "float16",
        "text": "float16",
        "captioner": "float16",
        "encoder": "float32",
    }


def test_model_dtype_beats_server_dtype_beats_auto(gpu: None) -> None:
    assert devices.model_dtype("float32", "bfloat16", "cuda", "sd15") == "float32"
    assert devices.model_dtype("auto", "bfloat16", "cuda", "sd15") == "bfloat16"
    assert devices.model_dtype("auto", "float16", "cuda", "encoder") == "float16"
    assert devices.engine_dtype("float16", "cpu") == "float16"  # explicit even on a CPU


def test_explicit_cpu_wins_over_a_gpu(gpu: None) -> None:
    settings = Settings(device="cpu")
    device = settings.resolved_device()
    assert device == "cpu"
    assert settings.resolved_dtype(device) == "float32"
    assert devices.model_dtype("auto", settings.resolved_dtype(device), device, "flux") == "float32"


def test_cuda_index_is_kept(gpu: None) -> None:
    assert devices.resolve_device("cuda:1") == "cuda:1"
    assert devices.model_dtype("auto", "auto", "cuda:1", "sd15") == "float16"


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:0;rm -rf /", " cpu", "mps", ""])
def test_unknown_device_strings_are_clear_errors(bad: str) -> None:
    with pytest.raises(Invalid, match="unknown device") as raised:
        devices.resolve_device(bad)
    assert raised.value.param == "device"
    with pytest.raises(ValueError, match="unknown device"):
        Settings(device=bad)


def test_cuda_asked_for_without_a_gpu_is_an_error(no_gpu: None) -> None:
    with pytest.raises(Invalid, match="torch sees no CUDA GPU"):
        devices.resolve_device("cuda")


@pytest.mark.parametrize("bad", ["fp16", "half", "float64", ""])
def test_unknown_dtypes_and_kinds_are_errors(bad: str) -> None:
    with pytest.raises(Invalid, match="unknown dtype"):
        devices.model_dtype(bad, "auto", "cpu", "text")
    with pytest.raises(Invalid, match="unknown dtype"):
        devices.engine_dtype(bad, "cpu")
    with pytest.raises(ValueError, match="unknown model kind"):
        devices.model_dtype("auto", "auto", "cpu", bad or "image")


def test_server_hands_auto_to_the_engines_on_a_gpu(gpu: None) -> None:
    settings = Settings()
    device = settings.resolved_device()
    assert (device, settings.resolved_dtype(device)) == ("cuda", "auto")
    assert Settings(dtype="float16").resolved_dtype(device) == "float16"


# Each engine's load asks genfoundry.devices: the dtype it passes to from_pretrained, with the loading stubbed.


class _Loaded(Exception):
    def __init__(self, kwargs: dict[str, object]) -> None:
        self.kwargs = kwargs


def _capture(*_args: object, **kwargs: object) -> None:
    raise _Loaded(kwargs)


def test_image_loader_uses_the_family_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers

    families = (
        ("sd15", diffusers.StableDiffusionPipeline, torch.float16),
        ("sdxl", diffusers.StableDiffusionXLPipeline, torch.float16),
        ("flux", diffusers.FluxPipeline, torch.bfloat16),
    )  # diffusers' lazy imports resolved before torch is made to see a GPU (they probe CUDA themselves)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    for family, pipeline, expected in families:
        monkeypatch.setattr(pipeline, "from_pretrained", _capture)
        spec = BaseModelSpec(id=f"x-{family}", family=family, source=str(tmp_path))
        with pytest.raises(_Loaded) as loaded:
            loader.load_pipeline(spec, device="cuda", dtype="auto")
        assert expected in loaded.value.kwargs.values(), family


def test_text_engine_and_captioner_use_the_choice(gpu: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_loader, "_from_pretrained", _capture)
    with pytest.raises(_Loaded) as loaded:
        text_loader.load_causal_lm(TextModelSpec(id="t", source=str(tmp_path)), device="cuda", dtype="auto")
    assert loaded.value.kwargs["dtype"] is torch.bfloat16

    spec = CaptionerSpec(id="c", kind="florence2", source=str(tmp_path))
    captioner = caption.Captioner(spec, device="cuda", dtype="auto")
    monkeypatch.setattr(captioner, "_from_pretrained", _capture)
    with pytest.raises(_Loaded) as loaded:
        captioner._load()
    assert loaded.value.kwargs["dtype"] is torch.bfloat16


def test_router_encoder_resolves_auto_and_refuses_bad_devices(gpu: None) -> None:
    assert TextEncoder(device="auto").device == "cuda"
    with pytest.raises(Invalid, match="unknown device"):
        TextEncoder(device="gpu0")
    with pytest.raises(ValueError, match="ONNX encoder runs on the CPU only"):
        TextEncoder(device="auto", backend="onnx")


def test_sft_recipe_uses_the_choice(old_gpu: None) -> None:
    config = SftTrainingConfig(base_source="x")
    assert resolve_device(config) == (torch.device("cuda"), torch.float32)  # no bf16: a float32 base
    assert resolve_device(SftTrainingConfig(base_source="x", dtype="float16"))[1] is torch.float16


def test_sft_recipe_on_a_cpu(no_gpu: None) -> None:
    assert resolve_device(SftTrainingConfig(base_source="x")) == (torch.device("cpu"), torch.float32)
    with pytest.raises(Invalid, match="torch sees no CUDA GPU"):
        resolve_device(SftTrainingConfig(base_source="x", device="cuda"))


def test_lora_recipe_precision_follows_the_gpu(old_gpu: None) -> None:
    assert resolve_mixed_precision("auto") == "fp16"
    with pytest.raises(Invalid, match="bfloat16 support"):
        resolve_mixed_precision("bf16")


def test_lora_recipe_precision_on_a_bf16_gpu_and_a_cpu(gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_mixed_precision("auto") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_mixed_precision("auto") == "no"
    with pytest.raises(Invalid, match="needs a CUDA GPU"):
        resolve_mixed_precision("fp16")
