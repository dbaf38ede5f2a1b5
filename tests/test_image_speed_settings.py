"""image_speed settings (GPU serving speed): environment names, every combination refused at start-up with one clear
message, the machine checks (torchao, fp8's GPU) and the start-up warning."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from genfoundry.cli import app
from genfoundry.config import ImageSpeedSettings, Settings
from genfoundry.errors import Invalid
from genfoundry.inference.pipeline_speed import check_image_speed, image_speed_warnings


def test_environment_variables_set_each_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "COMPILE": "true",
        "COMPILE_MODE": "max-autotune",
        "COMPILE_FULLGRAPH": "false",
        "HOTSWAP_MAX_RANK": "64",
        "CHANNELS_LAST": "1",
        "QUANTIZATION": "int8-weight-only",
        "FIRST_BLOCK_CACHE": "0.12",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"GENFOUNDRY_IMAGE_SPEED__{name}", value)

    speed = Settings(home=tmp_path).image_speed

    assert speed == ImageSpeedSettings(
        compile=True,
        compile_mode="max-autotune",
        compile_fullgraph=False,
        hotswap_max_rank=64,
        channels_last=True,
        quantization="int8-weight-only",
        first_block_cache=0.12,
    )


def test_everything_is_off_by_default(tmp_path: Path) -> None:
    speed = Settings(home=tmp_path).image_speed

    assert not (speed.compile or speed.channels_last or speed.fuse_qkv)
    assert (speed.hotswap_max_rank, speed.quantization, speed.first_block_cache) == (0, "none", 0.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fuse_qkv": True, "hotswap_max_rank": 16}, "fuse_qkv and image_speed.hotswap_max_rank cannot be combined"),
        ({"first_block_cache": 0.1, "compile": True}, "needs image_speed.compile_fullgraph=false"),
        ({"hotswap_max_rank": -1}, "greater than or equal to 0"),
        ({"first_block_cache": 1.0}, "less than 1"),
        ({"first_block_cache": -0.1}, "greater than or equal to 0"),
        ({"quantization": "int4"}, "'none', 'int8-weight-only' or 'fp8'"),
        ({"compile_mode": "fast"}, "'max-autotune-no-cudagraphs'"),
    ],
)
def test_bad_values_and_combinations_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ImageSpeedSettings.model_validate(fields)


def test_first_block_cache_compiles_without_fullgraph() -> None:
    speed = ImageSpeedSettings(first_block_cache=0.1, compile=True, compile_fullgraph=False, hotswap_max_rank=8)

    assert speed.first_block_cache == 0.1


def test_serve_stops_with_one_line_naming_the_bad_combination(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENFOUNDRY_HOME", str(tmp_path))
    monkeypatch.setenv("GENFOUNDRY_IMAGE_SPEED__FUSE_QKV", "true")
    monkeypatch.setenv("GENFOUNDRY_IMAGE_SPEED__HOTSWAP_MAX_RANK", "16")

    result = CliRunner().invoke(app, ["serve"])

    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "error: invalid settings: image_speed:" in output
    assert "fuse_qkv and image_speed.hotswap_max_rank cannot be combined" in output
    assert "Traceback" not in output and "errors.pydantic.dev" not in output


def test_serve_names_the_missing_torchao_with_its_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENFOUNDRY_HOME", str(tmp_path))
    monkeypatch.setenv("GENFOUNDRY_IMAGE_SPEED__QUANTIZATION", "int8-weight-only")
    _without_torchao(monkeypatch)

    result = CliRunner().invoke(app, ["serve"])

    assert result.exit_code == 1
    assert "needs torchao, which is not installed: `pip install torchao`" in " ".join(result.output.split())


def test_fp8_needs_a_cuda_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name: object() if name == "torchao" else real_find_spec(name),
    )

    with pytest.raises(Invalid, match="'fp8' needs a CUDA GPU; this server runs on 'cpu'"):
        check_image_speed(ImageSpeedSettings(quantization="fp8"), lambda: "cpu")


def test_nothing_to_check_without_quantization(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_torchao(monkeypatch)

    check_image_speed(ImageSpeedSettings(compile=True, hotswap_max_rank=8, channels_last=True), lambda: "cpu")


def test_compile_without_hotswap_warns_that_adapter_changes_recompile() -> None:
    assert image_speed_warnings(ImageSpeedSettings(compile=True, hotswap_max_rank=8)) == []
    [warning] = image_speed_warnings(ImageSpeedSettings(compile=True))
    assert "recompiles its denoiser" in warning and "hotswap_max_rank" in warning


def _without_torchao(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchao absent whether or not this machine has it (it has not, here)."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torchao" else real_find_spec(name))
