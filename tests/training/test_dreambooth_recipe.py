"""DreamBooth on tiny SD 1.5: the class-image cache, both loss terms, LoRA and full outputs, resume, bad input."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from genfoundry.errors import Invalid
from genfoundry.training import checkpoints
from genfoundry.training.class_images import ClassImageSpec, ClassSchedule, class_image_path
from genfoundry.training.config import DreamBoothTrainingConfig
from genfoundry.training.data import load_dataset_items
from genfoundry.training.dreambooth import train_dreambooth
from genfoundry.training.full_model import save_pipeline_with
from genfoundry.training.registry import CONFIGS, RECIPES, get_recipe
from tests.helpers import Recorder, assert_same_adapter, generate, load_pipeline, lora_modules, make_dataset

CLASS_PROMPT = "a photo of a square"


def db_config(base: Path, **overrides: Any) -> DreamBoothTrainingConfig:
    """Sized for tiny models on a CPU: 64 px, rank 4, four steps, three class images of two denoising steps."""
    params: dict[str, Any] = {
        "trigger_word": "sks",
        "class_word": "square",
        "class_prompt": CLASS_PROMPT,
        "num_class_images": 3,
        "class_image_steps": 2,
        "prior_loss_weight": 0.5,
        "rank": 4,
        "learning_rate": 1e-3,
        "max_steps": 4,
        "batch_size": 2,
        "resolution": 64,
        "checkpoint_every_n_steps": 2,
        "sample_every_n_steps": 0,
        "sample_steps": 2,
        "mixed_precision": "no",
    }
    return DreamBoothTrainingConfig(family="sd15", base_source=str(base), **{**params, **overrides})


@dataclass
class Run:
    config: DreamBoothTrainingConfig
    recorder: Recorder
    output: Path
    adapter: Path | None
    model: Path | None
    last_checkpoint: Path | None


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A square and a wide bucket: square batches share one forward pass with the class images, wide ones not.
    return make_dataset(tmp_path_factory.mktemp("db") / "data", 3, sizes=((64, 64), (64, 64), (96, 64)))


@pytest.fixture(scope="module")
def class_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("class-cache")


@pytest.fixture(scope="module")
def lora_run(tiny_dir: Path, data: Path, class_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    config = db_config(tiny_dir / "sd15", validation_prompts=("a photo of sks square",), sample_every_n_steps=4)
    recorder = Recorder()
    out = tmp_path_factory.mktemp("db-lora")
    result = train_dreambooth(config, data, out, recorder.callbacks(), class_cache_dir=class_cache)
    assert (result.step, result.stopped, result.model_path) == (4, False, None)
    return Run(config, recorder, out, result.adapter_path, result.model_path, result.last_checkpoint)


@pytest.fixture(scope="module")
def full_run(tiny_dir: Path, data: Path, class_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    config = db_config(tiny_dir / "sd15", train_mode="full", max_steps=3, checkpoint_every_n_steps=10)
    recorder = Recorder()
    out = tmp_path_factory.mktemp("db-full")
    result = train_dreambooth(config, data, out, recorder.callbacks(), class_cache_dir=class_cache)
    assert (result.step, result.stopped, result.adapter_path) == (3, False, None)
    return Run(config, recorder, out, result.adapter_path, result.model_path, result.last_checkpoint)


def file_stats(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of each PNG: a regenerated or rewritten file gets a new inode (atomic rename)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.png")}


# 1. Prior preservation: class images generated once, cached, reused; both loss terms reported.


def test_both_loss_terms_are_reported(lora_run: Run) -> None:
    steps = lora_run.recorder.steps
    assert [s for s, _t, _m in steps] == [1, 2, 3, 4]
    for _s, _t, metrics in steps:
        assert math.isfinite(metrics["instance_loss"]) and metrics["instance_loss"] > 0
        assert math.isfinite(metrics["prior_loss"]) and metrics["prior_loss"] > 0
        assert metrics["loss"] == pytest.approx(metrics["instance_loss"] + 0.5 * metrics["prior_loss"], rel=1e-5)
    assert any("DreamBooth sd15 (LoRA rank 4, prior preservation x0.5)" in line for line in lora_run.recorder.logs)


def test_class_images_are_generated_once_and_reused(
    lora_run: Run, tiny_dir: Path, data: Path, class_cache: Path, tmp_path: Path
) -> None:
    folder = class_cache / ClassImageSpec.from_config(lora_run.config).key()
    assert any("generating 3 class images" in line for line in lora_run.recorder.logs)
    made = sorted(p.name for p in folder.glob("*.png"))
    assert made == ["class_00000.png", "class_00001.png", "class_00002.png"]
    for path in folder.glob("*.png"):
        with Image.open(path) as image:
            assert image.size == (64, 64)
    spec = json.loads((folder / "spec.json").read_text())
    assert (spec["prompt"], spec["resolution"], spec["steps"]) == (CLASS_PROMPT, 64, 2)
    before = file_stats(folder)
    # What a run killed while writing image 3 leaves: a temp file, never a half class_00003.png.
    dead = folder / ".tmp-class_00003.png-999-deadbeef"
    dead.write_bytes(b"\x89PNG half")
    os.utime(dead, (1, 1))

    # The same key with one image more: only that one is generated; the others are the same files.
    recorder = Recorder()
    more = db_config(tiny_dir / "sd15", num_class_images=4, max_steps=1)
    train_dreambooth(more, data, tmp_path / "out", recorder.callbacks(), class_cache_dir=class_cache)

    assert any("generating 1 class images" in line and "(3 cached)" in line for line in recorder.logs)
    assert {name: stat for name, stat in file_stats(folder).items() if name in before} == before
    with Image.open(class_image_path(folder, 3)) as image:
        assert image.size == (64, 64)
    assert not dead.exists()
    assert sorted(p.name for p in class_cache.iterdir()) == [folder.name]

    # All four cached now: nothing is generated, nothing rewritten.
    again = Recorder()
    train_dreambooth(more, data, tmp_path / "again", again.callbacks(), class_cache_dir=class_cache)
    assert any("reusing 4 cached class images" in line for line in again.logs)
    assert not any("generating" in line for line in again.logs)
    assert file_stats(folder) == {**before, "class_00003.png": file_stats(folder)["class_00003.png"]}


def test_cache_key_covers_what_decides_the_images(tiny_dir: Path) -> None:
    base = db_config(tiny_dir / "sd15")
    key = ClassImageSpec.from_config(base).key()
    assert key == ClassImageSpec.from_config(db_config(tiny_dir / "sd15", max_steps=9, num_class_images=7)).key()
    for change in (
        {"class_prompt": "a photo of a circle"},
        {"resolution": 128},
        {"seed": 1},
        {"class_image_steps": 3},
        {"class_guidance_scale": 2.0},
    ):
        assert ClassImageSpec.from_config(db_config(tiny_dir / "sd15", **change)).key() != key, change
    assert ClassImageSpec.from_config(db_config(tiny_dir / "sdxl")).key() != key


def test_class_schedule_is_a_seeded_endless_shuffle() -> None:
    schedule = ClassSchedule(count=5, batch_size=2, seed=3)
    picked = [schedule.batch(micro, 2) for micro in range(5)]
    flat = [i for batch in picked for i in batch]
    assert sorted(flat[:5]) == list(range(5)) and sorted(flat[5:10]) == list(range(5))
    assert ClassSchedule(5, 2, seed=3).batch(4, 2) == picked[4]  # a resumed run pairs the same images
    assert schedule.batch(1, 1) == picked[1][:1]  # a short instance batch takes the first of its class batch
    assert [ClassSchedule(5, 2, seed=s).batch(0, 2) for s in range(6)] != [picked[0]] * 6


def test_without_prior_preservation_no_class_images_are_made(tiny_dir: Path, data: Path, tmp_path: Path) -> None:
    config = db_config(tiny_dir / "sd15", class_prompt=None, class_word=None, max_steps=1)
    assert (config.with_prior_preservation, config.instance_prompt) == (False, None)
    recorder = Recorder()
    result = train_dreambooth(config, data, tmp_path / "out", recorder.callbacks(), class_cache_dir=tmp_path / "c")
    assert result.adapter_path is not None
    assert set(recorder.steps[0][2]) == {"loss", "lr", "it_per_s"}
    assert not (tmp_path / "c").exists()


# 2. Outputs: a LoRA like train_lora's, or a complete pipeline folder.


def test_lora_output_loads_into_the_pipeline_and_changes_it(lora_run: Run, tiny_dir: Path) -> None:
    assert lora_run.adapter == lora_run.output / "adapter" / "pytorch_lora_weights.safetensors"
    modules, tensors, metadata = lora_modules(lora_run.adapter)
    assert modules and all(name.startswith("unet.") for name in modules)
    assert any(v.abs().max() > 0 for k, v in tensors.items() if k.endswith("lora_B.weight"))
    assert metadata["genfoundry_recipe"] == "dreambooth"
    assert metadata["genfoundry_train_mode"] == "lora"
    assert metadata["genfoundry_instance_prompt"] == "a photo of sks square"
    assert metadata["genfoundry_class_prompt"] == CLASS_PROMPT
    assert (metadata["genfoundry_rank"], metadata["genfoundry_trigger_word"]) == ("4", "sks")
    info = json.loads((lora_run.output / "adapter" / "training.json").read_text())
    assert (info["recipe"], info["train_mode"], info["steps"]) == ("dreambooth", "lora", 4)
    # Samples for the validation prompt at the last step.
    assert [(s, p) for s, p, _path in lora_run.recorder.samples] == [(4, "a photo of sks square")]

    pipe = load_pipeline(tiny_dir / "sd15", "sd15")
    before = generate(pipe, "a photo of sks square", range(2), steps=2)
    pipe.load_lora_weights(lora_run.adapter.parent)
    after = generate(pipe, "a photo of sks square", range(2), steps=2)
    assert np.abs(after - before).mean() > 0.1
    # Every checkpoint is an adapter too.
    assert lora_run.last_checkpoint == lora_run.output / "checkpoints" / "step_4"
    _m, _t, checkpoint_metadata = lora_modules(
        lora_run.output / "checkpoints" / "step_2" / checkpoints.LORA_WEIGHT_NAME
    )
    assert (checkpoint_metadata["genfoundry_recipe"], checkpoint_metadata["genfoundry_steps"]) == ("dreambooth", "2")
    pipe.unload_lora_weights()
    pipe.load_lora_weights(lora_run.output / "checkpoints" / "step_2")


def test_full_mode_writes_a_loadable_pipeline_with_the_trained_unet(full_run: Run, tiny_dir: Path) -> None:
    from diffusers import DiffusionPipeline

    assert full_run.model == full_run.output / "model"
    assert not (full_run.output / "adapter").exists()
    pipe = DiffusionPipeline.from_pretrained(full_run.model, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    base = load_pipeline(tiny_dir / "sd15", "sd15")
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    trained, original = pipe.unet.state_dict(), base.unet.state_dict()
    assert trained.keys() == original.keys()
    assert max(float((trained[k] - original[k]).abs().max()) for k in trained) > 1e-4
    text, base_text = pipe.text_encoder.state_dict(), base.text_encoder.state_dict()
    assert all(torch.equal(text[k], base_text[k]) for k in text)
    assert (full_run.model / "vae").is_symlink()  # untouched components are linked, not copied
    info = json.loads((full_run.model / "training.json").read_text())
    assert (info["recipe"], info["train_mode"], info["steps"]) == ("dreambooth", "full", 3)

    tuned = generate(pipe, "a photo of sks square", range(2), steps=2)
    plain = generate(base, "a photo of sks square", range(2), steps=2)
    assert np.abs(tuned - plain).mean() > 0.1
    assert any("DreamBooth sd15 (full fine-tune, prior preservation x0.5)" in line for line in full_run.recorder.logs)


def test_pipeline_saved_around_a_trained_unet(full_run: Run, tiny_dir: Path, tmp_path: Path) -> None:
    """The path for a Hub-id base (the base pipeline loaded around the UNet and saved whole), on a local base."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    assert full_run.model is not None
    unet = UNet2DConditionModel.from_pretrained(full_run.model / "unet")
    save_pipeline_with(full_run.config, torch.float32, tmp_path / "saved", unet=unet)
    saved = StableDiffusionPipeline.from_pretrained(tmp_path / "saved", safety_checker=None)
    assert not (tmp_path / "saved" / "vae").is_symlink()
    assert all(torch.equal(v, unet.state_dict()[k]) for k, v in saved.unet.state_dict().items())


# 3. Stop and resume reach the uninterrupted run's weights.


def test_lora_resume_after_a_crash_matches_an_uninterrupted_run(
    lora_run: Run, data: Path, class_cache: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit):
        train_dreambooth(lora_run.config, data, tmp_path, Recorder(crash_at=3).callbacks(), class_cache_dir=class_cache)
    assert [p.name for _s, p in checkpoints.list_checkpoints(tmp_path)] == ["step_2"]

    resumed = Recorder()
    result = train_dreambooth(
        lora_run.config,
        data,
        tmp_path,
        resumed.callbacks(),
        resume_from=tmp_path / "checkpoints" / "step_2",
        class_cache_dir=class_cache,
    )

    assert [s for s, _t, _m in resumed.steps] == [3, 4]
    for name in ("loss", "instance_loss", "prior_loss"):
        expected = [m[name] for _s, _t, m in lora_run.recorder.steps[2:]]
        assert [m[name] for _s, _t, m in resumed.steps] == pytest.approx(expected, abs=1e-5)
    assert result.adapter_path is not None and lora_run.adapter is not None
    assert_same_adapter(result.adapter_path, lora_run.adapter)


def test_full_mode_stop_and_resume_match_an_uninterrupted_run(
    full_run: Run, data: Path, class_cache: Path, tmp_path: Path
) -> None:
    stopper = Recorder(stop_after=1)
    stopped = train_dreambooth(full_run.config, data, tmp_path, stopper.callbacks(), class_cache_dir=class_cache)
    assert (stopped.stopped, stopped.step, stopped.model_path) == (True, 1, None)
    checkpoint = tmp_path / "checkpoints" / "step_1"
    assert stopped.last_checkpoint == checkpoint
    assert (checkpoint / "unet" / "config.json").is_file() and (checkpoint / checkpoints.STATE_FILE).is_file()
    assert not (tmp_path / "model").exists()

    result = train_dreambooth(
        full_run.config, data, tmp_path, Recorder().callbacks(), resume_from=checkpoint, class_cache_dir=class_cache
    )

    assert (result.stopped, result.step) == (False, 3)
    assert result.model_path is not None and full_run.model is not None
    resumed = load_file(result.model_path / "unet" / checkpoints.DENOISER_WEIGHT_NAME)
    reference = load_file(full_run.model / "unet" / checkpoints.DENOISER_WEIGHT_NAME)
    assert resumed.keys() == reference.keys()
    assert max(float((resumed[k] - reference[k]).abs().max()) for k in resumed) <= 1e-5


def test_resume_refuses_a_checkpoint_of_the_other_mode(
    lora_run: Run, full_run: Run, data: Path, class_cache: Path, tmp_path: Path
) -> None:
    lora_checkpoint = lora_run.output / "checkpoints" / "step_4"
    with pytest.raises(Invalid) as info:
        train_dreambooth(full_run.config, data, tmp_path, resume_from=lora_checkpoint, class_cache_dir=class_cache)
    assert info.value.param == "resume_from"
    assert "train_mode" in info.value.message


# 4. Configuration: defaults, prompts, and bad values named.


def test_prompts_and_defaults() -> None:
    config = DreamBoothTrainingConfig(family="sd15", base_source="x", trigger_word="sks", class_word="dog")
    assert (config.instance_prompt, config.class_prompt) == ("a photo of sks dog", "a photo of dog")
    assert (config.with_prior_preservation, config.num_class_images, config.prior_loss_weight) == (True, 100, 1.0)
    assert (config.train_mode, config.max_steps, config.learning_rate, config.rank) == ("lora", 500, 1e-4, 16)
    assert config.class_guidance_scale == 7.5
    full = DreamBoothTrainingConfig(family="sdxl", base_source="x", train_mode="full")
    assert (full.learning_rate, full.max_steps, full.gradient_checkpointing, full.use_8bit_adam) == (
        5e-6,
        800,
        True,
        True,
    )
    assert (full.with_prior_preservation, full.instance_prompt, full.class_guidance_scale) == (False, None, 5.0)
    # An instance prompt of the user's own gets the trigger word, like captions do; prior preservation can be off.
    own = DreamBoothTrainingConfig(
        family="sd15",
        base_source="x",
        trigger_word="sks",
        instance_prompt=" a  dog ",
        class_prompt="a dog",
        with_prior_preservation=False,
    )
    assert (own.instance_prompt, own.with_prior_preservation) == ("sks, a dog", False)
    # Saved hyperparameters rebuild the same config.
    params = {k: v for k, v in config.to_dict().items() if k not in ("family", "base_source")}
    assert DreamBoothTrainingConfig.from_params("sd15", "x", params) == config
    assert RECIPES["dreambooth"] is get_recipe("dreambooth") is train_dreambooth
    assert CONFIGS["dreambooth"] is DreamBoothTrainingConfig


def test_instance_prompt_replaces_every_caption(data: Path) -> None:
    items = load_dataset_items(data, "sks", caption_override="a photo of sks square")
    assert [item.caption for item in items] == ["a photo of sks square"] * 3
    assert {item.caption for item in load_dataset_items(data, "sks")} == {"sks", "sks, a red square, plain"}


@pytest.mark.parametrize(
    ("family", "params", "param"),
    [
        ("sd15", {"class_images": 10}, "class_images"),
        ("sd15", {"num_class_images": 0}, "num_class_images"),
        ("sd15", {"num_class_images": 10**6}, "num_class_images"),
        ("sd15", {"num_class_images": 2.5}, "num_class_images"),
        ("sd15", {"prior_loss_weight": -0.1}, "prior_loss_weight"),
        ("sd15", {"prior_loss_weight": "1"}, "prior_loss_weight"),
        ("sd15", {"train_mode": "banana"}, "train_mode"),
        ("flux", {"train_mode": "full"}, "train_mode"),
        ("sd15", {"with_prior_preservation": True}, "class_prompt"),
        ("sd15", {"with_prior_preservation": "yes", "class_prompt": "a dog"}, "with_prior_preservation"),
        ("sd15", {"class_word": "dog"}, "trigger_word"),
        ("sd15", {"class_prompt": "a\nb"}, "class_prompt"),
        ("sd15", {"instance_prompt": 3}, "instance_prompt"),
        ("sd15", {"class_image_steps": 0}, "class_image_steps"),
        ("sd15", {"class_guidance_scale": -1}, "class_guidance_scale"),
        ("sd15", {"rank": 0}, "rank"),
    ],
)
def test_bad_config_names_the_field(family: str, params: dict[str, Any], param: str) -> None:
    with pytest.raises(Invalid) as info:
        DreamBoothTrainingConfig.from_params(family, "somewhere", params)
    assert info.value.param == param
    assert param in info.value.message
