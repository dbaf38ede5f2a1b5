"""The kohya / ai-toolkit knobs take effect in the recipe: text-encoder LoRA, epoch checkpoints, 8-bit AdamW,
no bucketing, n_epochs as the step count, on tiny models on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genfoundry.errors import Invalid
from genfoundry.training import checkpoints
from genfoundry.training.config import DreamBoothTrainingConfig
from genfoundry.training.data import assign_buckets, load_dataset_items
from genfoundry.training.lora import train_lora
from tests.helpers import Recorder, assert_same_adapter, generate, load_pipeline, lora_modules, make_dataset
from tests.training.test_lora_recipe import small_config


@pytest.mark.parametrize(
    ("family", "encoders"), [("sd15", {"text_encoder"}), ("sdxl", {"text_encoder", "text_encoder_2"})]
)
def test_train_text_encoder_saves_text_encoder_lora_and_resumes(
    family: str, encoders: set[str], tiny_dir: Path, tmp_path: Path
) -> None:
    data = make_dataset(tmp_path / "data", 2)
    config = small_config(
        family,
        tiny_dir / family,
        max_steps=2,
        checkpoint_every_n_steps=1,
        train_text_encoder=True,
        sample_every_n_steps=2,
        validation_prompts=("sks square",),
    )
    result = train_lora(config, data, tmp_path / "out")
    assert result.adapter_path is not None and len(result.samples) == 1  # sampled through the trained encoders

    modules, tensors, _metadata = lora_modules(result.adapter_path)
    assert {m.split(".")[0] for m in modules} == {"unet", *encoders}
    pipe = load_pipeline(tiny_dir / family, family)
    for encoder in encoders:  # every attention projection, trained away from B = 0
        projections = {
            f"{encoder}.{name}"
            for name, _module in getattr(pipe, encoder).named_modules()
            if name.endswith(("q_proj", "k_proj", "v_proj", "out_proj"))
        }
        assert projections and {m for m in modules if m.startswith(f"{encoder}.")} == projections
        assert any(v.abs().max() > 0 for k, v in tensors.items() if k.startswith(f"{encoder}.") and "lora_B" in k)

    # diffusers loads the text-encoder layers too: the same prompt then gives other images than the UNet part alone.
    pipe.load_lora_weights(result.adapter_path.parent)
    with_encoders = generate(pipe, "sks square", range(1), steps=2)
    pipe.unload_lora_weights()
    unet_only = {k: v for k, v in tensors.items() if k.startswith("unet.")}
    pipe.load_lora_weights(unet_only)
    assert np.abs(with_encoders - generate(pipe, "sks square", range(1), steps=2)).mean() > 1e-4

    # A checkpoint carries the encoders' layers: resuming from step 1 reaches the uninterrupted run's weights.
    resumed = train_lora(config, data, tmp_path / "resumed", resume_from=tmp_path / "out" / "checkpoints" / "step_1")
    assert resumed.adapter_path is not None
    assert_same_adapter(result.adapter_path, resumed.adapter_path)


def test_train_text_encoder_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(Invalid) as flux:
        small_config("flux", Path("x"), train_text_encoder=True)
    assert flux.value.param == "train_text_encoder"
    with pytest.raises(Invalid) as full:
        DreamBoothTrainingConfig(family="sd15", base_source="x", train_mode="full", train_text_encoder=True)
    assert full.value.param == "train_text_encoder"


def test_save_every_n_epochs_checkpoints_at_epoch_ends(tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 3)
    # 3 images, batch 1: an epoch is 3 steps; 4 epochs are 12 steps, every 2nd epoch ends at steps 6 and 12.
    config = small_config("sd15", tiny_dir / "sd15", max_steps=None, epochs=4, save_every_n_epochs=2)
    recorder = Recorder()
    result = train_lora(config, data, tmp_path / "out", recorder.callbacks())
    assert result.total_steps == 12
    assert [step for step, _path in recorder.checkpoints] == [6, 12]

    # Accumulating 2 micro-batches per step, epochs end inside steps 2, 3, 5, 6: every epoch is kept.
    config = small_config(
        "sd15", tiny_dir / "sd15", max_steps=None, epochs=4, save_every_n_epochs=1, gradient_accumulation_steps=2
    )
    recorder = Recorder()
    result = train_lora(config, data, tmp_path / "accumulated", recorder.callbacks())
    assert result.total_steps == 6
    assert [step for step, _path in recorder.checkpoints] == [2, 3, 5, 6]


def test_adamw8bit_runs_with_bitsandbytes_state(tiny_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    data = make_dataset(tmp_path / "data", 2)
    config = small_config("sd15", tiny_dir / "sd15", max_steps=2, checkpoint_every_n_steps=2, use_8bit_adam=True)
    recorder = Recorder()
    result = train_lora(config, data, tmp_path / "out", recorder.callbacks())
    assert result.step == 2 and all(np.isfinite(result.losses))
    state = torch.load(tmp_path / "out" / "checkpoints" / "step_2" / checkpoints.STATE_FILE, weights_only=True)
    first = next(iter(state["optimizer"]["state"].values()))
    assert "__bnb_optimizer_quant_state__" in first and "exp_avg" not in first  # bitsandbytes AdamW, not torch


def test_bucketing_off_center_crops_every_image_square(tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 4, sizes=((64, 64), (128, 64)))
    items = load_dataset_items(data, "sks")
    assert len(assign_buckets(items, 64)) == 2
    assert list(assign_buckets(items, 64, bucketing=False)) == [(64, 64)]
    recorder = Recorder()
    train_lora(
        small_config("sd15", tiny_dir / "sd15", max_steps=1, bucketing=False),
        data,
        tmp_path / "out",
        recorder.callbacks(),
    )
    assert any("4 images in 1 buckets" in line for line in recorder.logs)


def test_gradient_checkpointing_with_text_encoder_runs(tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 2)
    config = small_config("sd15", tiny_dir / "sd15", max_steps=2, gradient_checkpointing=True, train_text_encoder=True)
    result = train_lora(config, data, tmp_path / "out")
    assert result.step == 2 and all(np.isfinite(result.losses))


def test_dreambooth_with_prior_preservation_trains_the_text_encoder(tiny_dir: Path, tmp_path: Path) -> None:
    from genfoundry.training.dreambooth import train_dreambooth
    from tests.training.test_dreambooth_recipe import db_config

    data = make_dataset(tmp_path / "data", 2)
    recorder = Recorder()
    config = db_config(tiny_dir / "sd15", max_steps=2, train_text_encoder=True)
    result = train_dreambooth(config, data, tmp_path / "out", recorder.callbacks(), class_cache_dir=tmp_path / "class")
    assert result.adapter_path is not None
    assert all("prior_loss" in metrics for _s, _t, metrics in recorder.steps)
    modules, _tensors, _metadata = lora_modules(result.adapter_path)
    assert {m.split(".")[0] for m in modules} == {"unet", "text_encoder"}


def test_resume_refuses_a_checkpoint_without_the_text_encoder_layers(tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 2)
    plain = small_config("sd15", tiny_dir / "sd15", max_steps=1, checkpoint_every_n_steps=1)
    train_lora(plain, data, tmp_path / "plain")
    with_encoder = small_config("sd15", tiny_dir / "sd15", max_steps=2, train_text_encoder=True)
    with pytest.raises(Invalid) as refused:
        train_lora(with_encoder, data, tmp_path / "out", resume_from=tmp_path / "plain" / "checkpoints" / "step_1")
    assert refused.value.param == "resume_from" and "text_encoder" in refused.value.message
