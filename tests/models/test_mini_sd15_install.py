"""`models build-tiny` installs the packaged, pretrained mini-sd15 next to the tiny models: an SD 1.5 base with the
defaults its model card measured, copied once and again only when the package's weights change."""

from __future__ import annotations

import json
import pathlib

from genfoundry.catalog import Catalog
from genfoundry.models import mini_sd15


def test_build_tiny_installs_and_registers_mini_sd15(tiny_dir: pathlib.Path) -> None:
    entry = Catalog(catalog_file=None, styles_file=None, tiny_dir=tiny_dir).models[mini_sd15.MINI_SD15_ID]
    assert (entry.family, entry.dtype) == ("sd15", "float32")
    assert (entry.defaults.width, entry.defaults.height, entry.defaults.steps) == (64, 64, 20)
    index = json.loads((pathlib.Path(entry.source) / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert (pathlib.Path(entry.source) / "MODEL_CARD.md").is_file()


def test_installing_again_copies_only_changed_weights(tmp_path: pathlib.Path) -> None:
    target, copied = mini_sd15.install(tmp_path)
    assert target is not None and copied
    assert mini_sd15.install(tmp_path) == (target, False)
    weights = target / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"older")  # a copy installed from an older package carries that package's fingerprint
    (target / ".fingerprint").write_text("older")
    assert mini_sd15.install(tmp_path) == (target, True)
    assert weights.read_bytes() != b"older"
