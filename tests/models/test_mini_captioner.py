"""mini-captioner, the packaged Florence-2 trained on the synthetic scenes: `models build-tiny` installs it as a
captioner, and through the captioning engine it names the colour, shape and background of scenes whose combination
it never saw. The bar sits far below the rate its model card measures on all 64 held-out scenes, so it cannot flake."""

from __future__ import annotations

import pathlib

from genfoundry.inference.caption import Captioner, load_captioner_catalog
from genfoundry.models import mini_captioner


def test_build_tiny_installs_it_as_a_captioner(tiny_dir: pathlib.Path) -> None:
    spec = load_captioner_catalog(None, tiny_dir)[mini_captioner.MINI_CAPTIONER_ID]
    assert (spec.kind, spec.dtype, spec.default_prompt) == ("florence2", "float32", "<CAPTION>")
    assert (pathlib.Path(spec.source) / "model.safetensors").is_file()
    assert (pathlib.Path(spec.source) / "MODEL_CARD.md").is_file()


def test_it_captions_held_out_scenes_right(tiny_dir: pathlib.Path) -> None:
    captioner = Captioner(load_captioner_catalog(None, tiny_dir)[mini_captioner.MINI_CAPTIONER_ID])
    measured = mini_captioner.held_out_accuracy(captioner, count=16)
    assert measured["accuracy"] >= 12 / 16, measured


def test_installing_again_copies_only_changed_weights(tmp_path: pathlib.Path) -> None:
    target, copied = mini_captioner.install(tmp_path)
    assert target is not None and copied
    assert mini_captioner.install(tmp_path) == (target, False)
    weights = target / "model.safetensors"
    weights.write_bytes(b"older")
    (target / ".fingerprint").write_text("older")
    assert mini_captioner.install(tmp_path) == (target, True)
    assert weights.read_bytes() != b"older"
