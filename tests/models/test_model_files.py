"""resolve_model_file: paths relative to the models folder, never leaving it, safetensors only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from genfoundry.config import Settings
from genfoundry.errors import Invalid, NotFound
from genfoundry.model_files import SingleFileBase, config_source, parse_single_file_source, resolve_model_file


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    (folder / "flux").mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, str(folder / "flux" / "flux1-dev.sft"))
    save_file({"w": torch.zeros(2)}, str(folder / "ae.sft"))
    return folder


def test_resolves_files_inside_the_folder(models_dir: Path) -> None:
    assert resolve_model_file(models_dir, "ae.sft") == (models_dir / "ae.sft").resolve()
    assert resolve_model_file(models_dir, "flux/flux1-dev.sft", param="pretrained_model").name == "flux1-dev.sft"
    assert resolve_model_file(models_dir, "./flux//flux1-dev.sft", param="ae").name == "flux1-dev.sft"


def test_symlink_inside_the_folder_is_fine(models_dir: Path) -> None:
    (models_dir / "alias.safetensors").symlink_to(models_dir / "ae.sft")
    assert resolve_model_file(models_dir, "alias.safetensors") == (models_dir / "ae.sft").resolve()


@pytest.mark.parametrize(
    ("relative", "words"),
    [
        ("../secret.sft", "'..'"),
        ("flux/../../secret.sft", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~/x.sft", "absolute"),
        ("a\\b.sft", "plain path"),
        ("", "required"),
        ("model.ckpt", "pickled"),
        ("weights.bin", "pickled"),
        ("notes.txt", "not a checkpoint"),
    ],
)
def test_hostile_paths_are_refused_naming_the_field(models_dir: Path, relative: str, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        resolve_model_file(models_dir, relative, param="clip_l")
    assert caught.value.param == "clip_l"
    assert words in caught.value.message


def test_symlink_out_of_the_folder_is_refused(models_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.sft"
    save_file({"w": torch.zeros(2)}, str(outside))
    (models_dir / "escape.sft").symlink_to(outside)
    (models_dir / "dir-escape").symlink_to(tmp_path, target_is_directory=True)
    for relative in ("escape.sft", "dir-escape/outside.sft"):
        with pytest.raises(Invalid, match="outside the models folder") as caught:
            resolve_model_file(models_dir, relative, param="t5xxl")
        assert caught.value.param == "t5xxl"


def test_missing_file_is_not_found(models_dir: Path) -> None:
    with pytest.raises(NotFound) as caught:
        resolve_model_file(models_dir, "flux/missing.sft", param="ae")
    assert caught.value.status_code == 404 and caught.value.param == "ae"


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\xff" * 8 + b"{}", b"\x02" + b"\0" * 7 + b"[]"])
def test_a_file_that_is_not_safetensors_is_refused(models_dir: Path, content: bytes) -> None:
    (models_dir / "fake.safetensors").write_bytes(content)
    with pytest.raises(Invalid, match="not a safetensors checkpoint"):
        resolve_model_file(models_dir, "fake.safetensors")


def test_no_models_folder_configured() -> None:
    with pytest.raises(Invalid, match="GENFOUNDRY_MODELS_DIR") as caught:
        resolve_model_file(None, "ae.sft", param="ae")
    assert caught.value.param == "ae"


def test_models_dir_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> None:
    monkeypatch.setenv("GENFOUNDRY_MODELS_DIR", str(models_dir))
    assert Settings().models_dir == models_dir
    assert Settings(models_dir=None).models_dir is None


def test_single_file_source_round_trips() -> None:
    base = SingleFileBase(checkpoint="/m/flux1-dev.sft", config="/tiny/flux", components={"vae": "/m/ae.sft"})
    source = base.to_source()
    assert parse_single_file_source(source) == base
    assert config_source(source) == "/tiny/flux"
    assert parse_single_file_source("/tiny/flux") is None and config_source("owner/repo") == "owner/repo"
