"""The LoRA recipe on tiny SD 1.5 / SDXL / FLUX: what it saves, that it learns, resume, stop, bad input, faults."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from genfoundry.errors import Invalid
from genfoundry.models.colour_vae import colour_vae
from genfoundry.training import checkpoints
from genfoundry.training.config import FAMILY_DEFAULTS, FLUX_TARGET_MODULES, UNET_TARGET_MODULES, LoraTrainingConfig
from genfoundry.training.data import BatchSchedule, assign_buckets, load_bucketed_image, load_dataset_items
from genfoundry.training.lora import train_lora
from genfoundry.training.registry import RECIPES, get_recipe
from tests.helpers import RED, Recorder, assert_same_adapter, generate, load_pipeline, lora_modules, make_dataset


def small_config(family: str, base: Path, **overrides: Any) -> LoraTrainingConfig:
    """A config sized for tiny models on a CPU: 64 px, rank 4, a few steps."""
    params: dict[str, Any] = {
        "trigger_word": "sks",
        "rank": 4,
        "learning_rate": 1e-3,
        "max_steps": 6,
        "resolution": 64,
        "checkpoint_every_n_steps": 100,
        "sample_every_n_steps": 0,
        "sample_steps": 2,
        "mixed_precision": "no",
    }
    return LoraTrainingConfig(family=family, base_source=str(base), **{**params, **overrides})


def expected_modules(denoiser: Any, prefix: str, targets: tuple[str, ...]) -> set[str]:
    """Module names PEFT's rule picks (name == target or ends with ".target"), with the component prefix."""
    return {
        f"{prefix}.{name}"
        for name, module in denoiser.named_modules()
        if isinstance(module, torch.nn.Linear) and any(name == t or name.endswith(f".{t}") for t in targets)
    }


# 1. Every family: trains, reports, checkpoints (last K), samples, and saves loadable, correctly keyed LoRAs.


@pytest.mark.parametrize("family", ["sd15", "sdxl", "flux"])
def test_lora_run_saves_a_loadable_adapter(family: str, tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 4, sizes=((64, 64), (96, 64)))
    config = small_config(
        family,
        tiny_dir / family,
        batch_size=2,
        checkpoint_every_n_steps=2,
        keep_last_n_checkpoints=2,
        sample_every_n_steps=3,
        validation_prompts=("sks square",),
    )
    out = tmp_path / "out"
    recorder = Recorder()

    result = train_lora(config, data, out, recorder.callbacks())

    assert (result.step, result.total_steps, result.stopped) == (6, 6, False)
    assert [(s, t) for s, t, _m in recorder.steps] == [(s, 6) for s in range(1, 7)]
    assert all(math.isfinite(m["loss"]) and 0 < m["loss"] < 10 for _s, _t, m in recorder.steps)
    assert all(m["lr"] == pytest.approx(1e-3) and m["it_per_s"] > 0 for _s, _t, m in recorder.steps)
    assert result.losses == recorder.losses
    # Checkpoints at 2, 4, 6; only the last two remain, each a complete, loadable folder.
    assert [s for s, _p in recorder.checkpoints] == [2, 4, 6]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_4", "step_6"]
    assert result.last_checkpoint == out / "checkpoints" / "step_6"
    assert checkpoints.load_checkpoint(out / "checkpoints" / "step_4", config.to_dict()).step == 4
    # Samples at 3 and 6, real PNGs of the sample size.
    assert [(s, p) for s, p, _path in recorder.samples] == [(3, "sks square"), (6, "sks square")]
    for _s, _p, path in recorder.samples:
        with Image.open(path) as image:
            assert image.size == (64, 64)

    assert result.adapter_path == out / "adapter" / "pytorch_lora_weights.safetensors"
    modules, tensors, metadata = lora_modules(result.adapter_path)
    pipe = load_pipeline(tiny_dir / family, family)
    prefix = "transformer" if family == "flux" else "unet"
    targets = FLUX_TARGET_MODULES if family == "flux" else UNET_TARGET_MODULES
    assert modules == expected_modules(getattr(pipe, prefix), prefix, targets)
    if family == "flux":  # the joint-attention text stream and the single blocks are trained too
        assert {
            "transformer.transformer_blocks.0.attn.add_q_proj",
            "transformer.transformer_blocks.0.ff_context.net.2",
            "transformer.single_transformer_blocks.0.attn.to_q",
        } <= modules
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in tensors)
    assert all(v.shape[0] == 4 for k, v in tensors.items() if k.endswith("lora_A.weight"))
    assert any(v.abs().max() > 0 for k, v in tensors.items() if k.endswith("lora_B.weight"))  # B starts at 0
    assert metadata["genfoundry_rank"] == "4"
    assert metadata["genfoundry_alpha"] == "4.0"
    assert metadata["genfoundry_trigger_word"] == "sks"
    assert metadata["genfoundry_steps"] == "6"
    assert metadata["genfoundry_base"] == str(tiny_dir / family)
    lora_config = json.loads(metadata["lora_adapter_metadata"])
    assert (lora_config[f"{prefix}.r"], lora_config[f"{prefix}.lora_alpha"]) == (4, 4)

    if family == "flux":  # use_8bit_adam is a FLUX default; without bitsandbytes the run says so and goes on
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            assert any("bitsandbytes is not installed" in line for line in recorder.logs)

    before = generate(pipe, "sks square", range(2), steps=2)
    pipe.load_lora_weights(result.adapter_path.parent)
    after = generate(pipe, "sks square", range(2), steps=2)
    assert np.abs(after - before).mean() > 0.1


def test_gradient_checkpointing_changes_memory_not_results(tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 2)
    adapters = []
    for checkpointing in (False, True):
        config = small_config("sdxl", tiny_dir / "sdxl", max_steps=3, gradient_checkpointing=checkpointing)
        result = train_lora(config, data, tmp_path / f"out-{checkpointing}")
        assert result.adapter_path is not None
        adapters.append(result.adapter_path)
    assert_same_adapter(*adapters)


def test_importing_the_registry_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, genfoundry.training.registry; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


# 2. Proof that training learns: a red dataset makes the adapter's images red.


def colour_base(tiny_dir: Path, target: Path) -> Path:
    """Tiny SD 1.5 with the colour-preserving VAE and a v-prediction scheduler.

    With epsilon prediction the loss barely weights the image's mean at high noise (why trainers add offset
    noise), so a whole-dataset colour shift is learned slowly; v-prediction (SD 2.x) weights it fully.
    """
    shutil.copytree(tiny_dir / "sd15", target)
    shutil.rmtree(target / "vae")
    colour_vae().save_pretrained(target / "vae")
    scheduler_file = target / "scheduler" / "scheduler_config.json"
    scheduler = json.loads(scheduler_file.read_text())
    scheduler["prediction_type"] = "v_prediction"
    scheduler_file.write_text(json.dumps(scheduler))
    return target


def test_training_makes_images_closer_to_the_dataset(tiny_dir: Path, tmp_path: Path) -> None:
    base = colour_base(tiny_dir, tmp_path / "base")
    data = make_dataset(tmp_path / "data", 8)
    dataset_colour = np.mean([np.asarray(Image.open(p), dtype=float).mean((0, 1)) for p in data.glob("*.png")], 0)
    # rank 64 on every conv and linear layer (LoCon style) is about a full fine-tune of this tiny UNet: the
    # attention-only default moves the colour too, but slowly (its GroupNorms have one channel per group).
    targets = (*UNET_TARGET_MODULES, "conv1", "conv2", "conv_in", "conv_out", "conv_shortcut", "proj_in", "proj_out")
    targets += ("ff.net.0.proj", "ff.net.2", "time_emb_proj")
    config = small_config(
        "sd15", base, rank=64, learning_rate=1e-3, max_steps=150, batch_size=4, target_modules=targets
    )
    recorder = Recorder()

    result = train_lora(config, data, tmp_path / "out", recorder.callbacks())

    assert np.mean(recorder.losses[-10:]) < 0.5 * np.mean(recorder.losses[:10])
    pipe = load_pipeline(base, "sd15")
    plain = generate(pipe, "sks", range(8), steps=10)
    assert result.adapter_path is not None
    pipe.load_lora_weights(result.adapter_path.parent)
    tuned = generate(pipe, "sks", range(8), steps=10)
    plain_distance = np.linalg.norm(plain.mean((1, 2)) - dataset_colour, axis=1).mean()
    tuned_distance = np.linalg.norm(tuned.mean((1, 2)) - dataset_colour, axis=1).mean()
    print(f"mean colour distance to the dataset: base {plain_distance:.1f}, adapter {tuned_distance:.1f}")
    assert tuned_distance < 0.5 * plain_distance


# 3-4. Resume: after a crash or a stop, the resumed run ends with the uninterrupted run's weights.


def resume_config(tiny_dir: Path) -> LoraTrainingConfig:
    # Warmup + cosine, accumulation and two buckets: every piece of state a resume must restore matters.
    return small_config(
        "sd15",
        tiny_dir / "sd15",
        max_steps=8,
        checkpoint_every_n_steps=4,
        lr_scheduler="cosine",
        lr_warmup_steps=2,
        gradient_accumulation_steps=2,
        batch_size=2,
    )


@pytest.fixture(scope="module")
def resume_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("resume") / "data", 6, sizes=((64, 64), (128, 64)))


@dataclass
class Reference:
    recorder: Recorder
    adapter: Path


@pytest.fixture(scope="module")
def uninterrupted(tiny_dir: Path, resume_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    recorder = Recorder()
    result = train_lora(resume_config(tiny_dir), resume_data, tmp_path_factory.mktemp("whole"), recorder.callbacks())
    assert result.adapter_path is not None
    return Reference(recorder, result.adapter_path)


def test_resume_after_a_crash_matches_an_uninterrupted_run(
    tiny_dir: Path, resume_data: Path, uninterrupted: Reference, tmp_path: Path
) -> None:
    config = resume_config(tiny_dir)
    with pytest.raises(SystemExit):
        train_lora(config, resume_data, tmp_path, Recorder(crash_at=6).callbacks())
    assert [p.name for _s, p in checkpoints.list_checkpoints(tmp_path)] == ["step_4"]

    resumed = Recorder()
    result = train_lora(config, resume_data, tmp_path, resumed.callbacks(), resume_from=tmp_path / "checkpoints/step_4")

    assert [s for s, _t, _m in resumed.steps] == [5, 6, 7, 8]
    assert resumed.losses == pytest.approx(uninterrupted.recorder.losses[4:], abs=1e-5)
    lrs = [m["lr"] for _s, _t, m in resumed.steps]
    assert lrs == pytest.approx([m["lr"] for _s, _t, m in uninterrupted.recorder.steps[4:]])
    assert result.adapter_path is not None
    worst = assert_same_adapter(result.adapter_path, uninterrupted.adapter)
    print(f"largest weight difference after resume: {worst:.2e}")


def test_stop_saves_a_checkpoint_and_resume_finishes(
    tiny_dir: Path, resume_data: Path, uninterrupted: Reference, tmp_path: Path
) -> None:
    config = resume_config(tiny_dir)
    stopper = Recorder(stop_after=3)

    stopped = train_lora(config, resume_data, tmp_path, stopper.callbacks())

    assert (stopped.stopped, stopped.step, stopped.adapter_path) == (True, 3, None)
    assert stopped.last_checkpoint == tmp_path / "checkpoints" / "step_3"
    assert [s for s, _t, _m in stopper.steps] == [1, 2, 3]
    assert not (tmp_path / "adapter").exists()
    # The stop checkpoint is itself a usable adapter.
    pipe = load_pipeline(tiny_dir / "sd15", "sd15")
    pipe.load_lora_weights(stopped.last_checkpoint)

    result = train_lora(config, resume_data, tmp_path, Recorder().callbacks(), resume_from=stopped.last_checkpoint)

    assert (result.stopped, result.step) == (False, 8)
    assert result.adapter_path is not None
    assert_same_adapter(result.adapter_path, uninterrupted.adapter)


def test_resume_refuses_a_checkpoint_of_another_shape(tiny_dir: Path, resume_data: Path, tmp_path: Path) -> None:
    config = small_config("sd15", tiny_dir / "sd15", max_steps=2, checkpoint_every_n_steps=2)
    train_lora(config, resume_data, tmp_path, Recorder().callbacks())
    other = small_config("sd15", tiny_dir / "sd15", max_steps=4, rank=8)
    with pytest.raises(Invalid) as info:
        train_lora(other, resume_data, tmp_path / "b", resume_from=tmp_path / "checkpoints" / "step_2")
    assert info.value.param == "resume_from"
    assert "rank" in info.value.message


# 5. Bad configuration is an Invalid naming the field.


@pytest.mark.parametrize(
    ("family", "overrides", "param"),
    [
        ("sd15", {"rank": 0}, "rank"),
        ("sd15", {"rank": 10_000}, "rank"),
        ("sd15", {"learning_rate": -1e-4}, "learning_rate"),
        ("sd15", {"learning_rate": 2.0}, "learning_rate"),
        ("sd15", {"max_steps": 10**9}, "max_steps"),
        ("sd15", {"max_steps": 100, "epochs": 2}, "epochs"),
        ("sd15", {"resolution": 500}, "resolution"),
        ("flux", {"resolution": 72}, "resolution"),
        ("sdxl", {"mixed_precision": "fp8"}, "mixed_precision"),
        ("sd15", {"target_modules": []}, "target_modules"),
        ("sd15", {"batch_size": 0}, "batch_size"),
        ("sd15", {"rank": True}, "rank"),
        ("sd11", {}, "family"),
    ],
)
def test_bad_config_names_the_field(family: str, overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(Invalid) as info:
        LoraTrainingConfig(family=family, base_source="somewhere", **overrides)
    assert info.value.param == param
    assert param in info.value.message


def test_config_defaults_and_params() -> None:
    flux = LoraTrainingConfig(family="flux", base_source="black-forest-labs/FLUX.1-dev")
    assert (flux.rank, flux.alpha, flux.learning_rate, flux.max_steps) == (16, 16.0, 1e-4, 2000)
    assert (flux.checkpoint_every_n_steps, flux.use_8bit_adam, flux.resolution) == (250, True, 512)
    assert flux.target_modules == FLUX_TARGET_MODULES and "attn.add_q_proj" in flux.target_modules
    sdxl = LoraTrainingConfig(family="sdxl", base_source="x", epochs=3)
    assert (sdxl.resolution, sdxl.max_steps, sdxl.total_steps(10)) == (1024, None, 30)
    assert set(FAMILY_DEFAULTS) == {"sd15", "sdxl", "flux"}
    assert LoraTrainingConfig.from_params("sd15", "x", {"rank": 8, "trigger_word": " ohwx "}).trigger_word == "ohwx"
    with pytest.raises(Invalid) as info:
        LoraTrainingConfig.from_params("sd15", "x", {"n_layers": 3})
    assert info.value.param == "n_layers"
    assert get_recipe("lora") is RECIPES["lora"] is train_lora
    with pytest.raises(Invalid):
        get_recipe("full")


def test_bad_run_inputs_fail_before_training(tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 2)
    (tmp_path / "empty").mkdir()
    cases = [
        (small_config("sd15", tiny_dir / "sd15"), tmp_path / "empty", "dataset"),
        (small_config("sd15", tiny_dir / "sd15", mixed_precision="fp16"), data, "mixed_precision"),
        (small_config("sd15", tiny_dir / "sd15", target_modules=("to_q", "nope")), data, "target_modules"),
    ]
    if torch.cuda.is_available():
        cases.pop(1)
    for config, dataset, param in cases:
        with pytest.raises(Invalid) as info:
            train_lora(config, dataset, tmp_path / "out")
        assert info.value.param == param
    (tmp_path / "nocap").mkdir()
    Image.new("RGB", (64, 64), RED).save(tmp_path / "nocap" / "a.png")
    with pytest.raises(Invalid) as info:
        load_dataset_items(tmp_path / "nocap", None)
    assert info.value.param == "trigger_word"


# 6. Aspect-ratio bucketing.


def test_bucketing_groups_aspect_ratios_and_batches_stay_in_one_bucket(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 9, sizes=((64, 64), (120, 80), (50, 100)))
    (data / "img_00.txt").write_text("a photo of sks on a table")
    (data / "img_02.txt").write_text("a plain square")
    items = load_dataset_items(data, "sks")
    assert items[0].caption == "a photo of sks on a table"  # already has the trigger
    assert items[1].caption == "sks, a red square, plain"
    assert items[2].caption == "sks, a plain square"
    assert items[4].caption == "sks"  # no caption file: the trigger word alone

    groups = assign_buckets(items, 64)
    assert len(groups) >= 2
    bucket_of = {i: bucket for bucket, indices in groups.items() for i in indices}
    assert bucket_of[0] == (64, 64) and bucket_of[1][0] > bucket_of[1][1] and bucket_of[2][0] < bucket_of[2][1]
    assert all(w % 16 == 0 and h % 16 == 0 and 0.7 < w * h / 64**2 < 1.3 for w, h in groups)

    schedule = BatchSchedule(groups, batch_size=2, seed=7)
    for epoch in range(3):
        batches = schedule.epoch_batches(epoch)
        assert sorted(i for batch in batches for i in batch) == list(range(9))
        assert all(len({bucket_of[i] for i in batch}) == 1 for batch in batches)
    assert schedule.epoch_batches(0) != schedule.epoch_batches(1)
    assert BatchSchedule(groups, 2, seed=7).batch(5) == schedule.batch(5)

    prepared = load_bucketed_image(items[2].image_path, bucket_of[2])
    assert tuple(prepared.pixels.shape) == (1, 3, bucket_of[2][1], bucket_of[2][0])
    assert prepared.original_size == (100, 50)
    assert float(prepared.pixels.min()) >= -1.0 and float(prepared.pixels.max()) <= 1.0


# 7. A failing checkpoint write leaves the previous checkpoint intact.


def test_checkpoint_write_failure_keeps_the_previous_checkpoint(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dataset(tmp_path / "data", 2)
    config = small_config("sd15", tiny_dir / "sd15", max_steps=6, checkpoint_every_n_steps=2)
    real_write = checkpoints.write_training_state
    calls = []

    def failing_write(folder: Path, state: dict[str, Any], info: dict[str, Any]) -> None:
        calls.append(folder)
        if len(calls) == 2:  # the step-4 save: half a file, then the disk is full
            (folder / checkpoints.STATE_FILE).write_bytes(b"partial")
            raise OSError(28, "No space left on device")
        real_write(folder, state, info)

    monkeypatch.setattr(checkpoints, "write_training_state", failing_write)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        train_lora(config, data, out)

    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_2"]  # no partial step_4, no temp dir
    assert not (out / "adapter").exists()
    previous = out / "checkpoints" / "step_2"
    assert checkpoints.load_checkpoint(previous, config.to_dict()).step == 2
    pipe = load_pipeline(tiny_dir / "sd15", "sd15")
    pipe.load_lora_weights(previous)
    monkeypatch.setattr(checkpoints, "write_training_state", real_write)
    result = train_lora(config, data, out, resume_from=previous)
    assert (result.step, result.stopped) == (6, False)
