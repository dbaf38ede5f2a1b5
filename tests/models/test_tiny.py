"""Tests for the offline tiny random-weight pipelines in genfoundry.models.tiny."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from genfoundry.catalog import Catalog  # noqa: E402
from genfoundry.models import tiny  # noqa: E402
from genfoundry.models.tiny import build_tiny_pipeline  # noqa: E402

FAMILIES = ["sd15", "sdxl", "flux"]
EXPECTED_CLASS = {
    "sd15": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "flux": "FluxPipeline",
}
EXPECTED_I2I = {
    "sd15": "StableDiffusionImg2ImgPipeline",
    "sdxl": "StableDiffusionXLImg2ImgPipeline",
    "flux": "FluxImg2ImgPipeline",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {fam: build_tiny_pipeline(fam, root / fam, seed=0) for fam in FAMILIES}


@pytest.fixture(scope="module")
def pipes(built: dict[str, pathlib.Path]) -> dict[str, Any]:
    out = {}
    for fam, path in built.items():
        pipe = diffusers.DiffusionPipeline.from_pretrained(path)
        pipe.set_progress_bar_config(disable=True)
        out[fam] = pipe
    return out


def _call_kwargs(pipe: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"height": 64, "width": 64, "num_inference_steps": 2, "output_type": "pil"}
    if hasattr(pipe, "transformer"):
        kwargs["max_sequence_length"] = 32  # T5 prompt length; default 512 also works, just slower
    return kwargs


def _generate(pipe: Any, prompt: str, seed: int = 0) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(seed)
    image = pipe(prompt, generator=generator, **_call_kwargs(pipe)).images[0]
    assert image.size == (64, 64)
    return np.asarray(image)


def test_build_tiny_registers_every_family_for_the_catalog(tiny_dir: pathlib.Path) -> None:
    """What `models build-tiny` leaves for the catalog: tiny-sd15 / tiny-sdxl / tiny-flux as float32 image bases of
    their family, read from the folder holding that family's pipeline, generating 64x64 by default; tiny-llm as a
    text base."""
    catalog = Catalog(catalog_file=None, styles_file=None, tiny_dir=tiny_dir)
    for family in FAMILIES:
        entry = catalog.models[f"tiny-{family}"]
        assert (entry.family, entry.dtype) == (family, "float32")
        index = json.loads((pathlib.Path(entry.source) / "model_index.json").read_text())
        assert index["_class_name"] == EXPECTED_CLASS[family]
        assert (entry.defaults.width, entry.defaults.height) == (64, 64)
    assert {model_id for model_id in catalog.models if model_id.startswith("tiny-")} == {
        "tiny-sd15",
        "tiny-sdxl",
        "tiny-flux",
    }
    text = catalog.get_text("tiny-llm")
    assert (pathlib.Path(text.source) / "config.json").is_file()


def test_unknown_family_rejected(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="unknown tiny family"):
        build_tiny_pipeline("sd3", tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("family", FAMILIES)
def test_layout_and_class(family: str, built: dict[str, pathlib.Path], pipes: dict[str, Any]) -> None:
    path = built[family]
    assert (path / "model_index.json").is_file()
    assert list(path.rglob("*.safetensors"))
    assert type(pipes[family]).__name__ == EXPECTED_CLASS[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_deterministic(family: str, pipes: dict[str, Any]) -> None:
    pipe = pipes[family]
    first = _generate(pipe, "a photo of a cat", seed=0)
    second = _generate(pipe, "a photo of a cat", seed=0)
    assert first.shape == (64, 64, 3)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_and_seed_change_image(family: str, pipes: dict[str, Any]) -> None:
    pipe = pipes[family]
    base = _generate(pipe, "a photo of a cat", seed=0)
    assert not np.array_equal(base, _generate(pipe, "a green landscape, cinematic", seed=0))
    assert not np.array_equal(base, _generate(pipe, "a photo of a cat", seed=1))


@pytest.mark.parametrize("family", FAMILIES)
def test_img2img_from_pipe(family: str, pipes: dict[str, Any]) -> None:
    pipe = pipes[family]
    init = _generate(pipe, "a photo of a cat")
    i2i = diffusers.AutoPipelineForImage2Image.from_pipe(pipe)
    assert type(i2i).__name__ == EXPECTED_I2I[family]
    from PIL import Image

    kwargs = _call_kwargs(pipe) | {"num_inference_steps": 4, "strength": 0.5}
    out = i2i(
        "a photo of a dog",
        image=Image.fromarray(init),
        generator=torch.Generator("cpu").manual_seed(0),
        **kwargs,
    ).images[0]
    assert out.size == (64, 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_build_is_byte_deterministic(family: str, built: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    tiny._clip_vocab_merges.cache_clear()  # re-learn tokenizers too, not just reuse the cache
    tiny._t5_vocab.cache_clear()
    again = build_tiny_pipeline(family, tmp_path / "again", seed=0)
    other = build_tiny_pipeline(family, tmp_path / "other", seed=1)
    files = sorted(p.relative_to(built[family]) for p in built[family].rglob("*.safetensors"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.safetensors"))
    for rel in files:
        assert (built[family] / rel).read_bytes() == (again / rel).read_bytes(), rel
    for rel in [*files, pathlib.Path("model_index.json")]:
        assert (built[family] / rel).is_file()
    assert any((built[family] / rel).read_bytes() != (other / rel).read_bytes() for rel in files)
    tok_files = sorted(p.relative_to(built[family]) for p in built[family].rglob("tokenizer*/*"))
    for rel in tok_files:
        assert (built[family] / rel).read_bytes() == (again / rel).read_bytes(), rel


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizers_survive_reload(family: str, pipes: dict[str, Any]) -> None:
    pipe = pipes[family]
    tokenizers = [t for t in (pipe.tokenizer, getattr(pipe, "tokenizer_2", None)) if t is not None]
    assert len(tokenizers) == (1 if family == "sd15" else 2)
    for tok in tokenizers:
        assert len(tok) > 200, type(tok).__name__
        special = {tok.unk_token_id, tok.eos_token_id, tok.bos_token_id, tok.pad_token_id} - {None}
        for word in ("cat", "landscape", "portrait", "sks"):
            ids = tok(word, add_special_tokens=False).input_ids
            assert ids, (type(tok).__name__, word)
            assert not set(ids) <= special, (type(tok).__name__, word, ids)
            assert tok.unk_token_id not in ids, (type(tok).__name__, word, ids)
        a = tok("a photo of a cat").input_ids
        b = tok("a red dog, minimalist style").input_ids
        assert a != b
        encoder = pipe.text_encoder if tok is pipe.tokenizer else pipe.text_encoder_2
        assert max(a + b) < encoder.config.vocab_size


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_target_modules_are_linear(family: str, pipes: dict[str, Any]) -> None:
    pipe = pipes[family]
    denoiser = pipe.transformer if family == "flux" else pipe.unet
    names = {name: mod for name, mod in denoiser.named_modules()}
    for suffix in ("to_q", "to_k", "to_v", "to_out.0"):
        matches = [m for n, m in names.items() if n.endswith("." + suffix)]
        assert matches, suffix
        assert all(isinstance(m, torch.nn.Linear) for m in matches), suffix


@pytest.mark.parametrize("family", FAMILIES)
def test_training_lora_lands_on_the_family_default_layers(family: str, built: dict[str, pathlib.Path]) -> None:
    """The tiny denoisers stand in for real ones in LoRA training: the recipe's setup finds every default target
    module of the family, freezes the base, trains exactly those layers, and seeds their init from the config
    without moving the caller's random state."""
    pytest.importorskip("peft")
    from genfoundry.training.config import LoraTrainingConfig
    from genfoundry.training.lora_setup import add_lora, check_target_modules

    config = LoraTrainingConfig(family=family, base_source=str(built[family]), rank=4)

    def set_up(seed: int) -> tuple[dict[str, torch.Tensor], set[str], set[str]]:
        if family == "flux":
            model = diffusers.FluxTransformer2DModel.from_pretrained(built[family], subfolder="transformer")
        else:
            model = diffusers.UNet2DConditionModel.from_pretrained(built[family], subfolder="unet")
        check_target_modules(model, config.target_modules)
        targeted = {
            name
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
            and any(name == t or name.endswith(f".{t}") for t in config.target_modules)
        }
        caller_rng = torch.random.get_rng_state()
        add_lora(model, dataclasses.replace(config, seed=seed), torch.device("cpu"), torch.float32)
        assert torch.equal(torch.random.get_rng_state(), caller_rng)
        trainable = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
        return trainable, {name.split(".lora_")[0] for name in trainable}, targeted

    trainable, trained_modules, targeted = set_up(seed=0)
    assert all(".lora_A." in name or ".lora_B." in name for name in trainable)  # the base is frozen
    assert trained_modules == targeted
    assert all(p.dtype == torch.float32 for p in trainable.values())
    again, _, _ = set_up(seed=0)
    other, _, _ = set_up(seed=1)
    lora_a = [name for name in trainable if ".lora_A." in name]
    assert all(torch.equal(trainable[name], again[name]) for name in lora_a)
    assert not all(torch.equal(trainable[name], other[name]) for name in lora_a)


def test_tokenizer_vocab_independent_of_process_hash_seed() -> None:
    code = (
        "import json; from genfoundry.models import tiny; "
        "print(json.dumps([tiny._clip_vocab_merges(), tiny._t5_vocab()]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    here = json.loads(json.dumps([tiny._clip_vocab_merges(), tiny._t5_vocab()]))
    assert other == here
