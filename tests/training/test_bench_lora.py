"""The LoRA training bench on tiny models: the reference loop trains the recipe's LoRA, the harness runs both
loops in subprocesses and reports, and the bench's models have the sizes and component shares it claims.
No timing is asserted (timings never go into pass/fail tests)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from bench.bench_lora_training import (
    lora_params,
    main,
    make_dataset,
    sd15_sized_flop_shares,
)
from bench.reference_lora_loop import PHASES, meta_phase_flops, run_reference_loop
from safetensors.torch import load_file

from genfoundry.models.sized import (
    MEDIUM_RESOLUTION,
    flux_sized_pipeline,
    sd15_medium_pipeline,
    sd15_sized_pipeline,
)
from genfoundry.training.config import LoraTrainingConfig
from genfoundry.training.lora import train_lora


def _config(family: str, base: Path, steps: int, batch_size: int = 2) -> LoraTrainingConfig:
    return LoraTrainingConfig.from_params(family, str(base), lora_params(64, steps, batch_size, rank=4))


@pytest.mark.parametrize("family", ["sd15", "sdxl", "flux"])
def test_reference_loop_trains_the_same_lora_layers_as_the_recipe(family: str, tiny_dir: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", 2, 64)
    config = _config(family, tiny_dir / family, steps=2)

    result = run_reference_loop(config, data, count_flops=True)

    assert len(result.losses) == 2 and all(math.isfinite(x) and 0 < x < 10 for x in result.losses)
    assert len(result.step_ends) == 2 and result.step_ends == sorted(result.step_ends)
    assert set(result.phase_seconds) == set(PHASES) and all(v > 0 for v in result.phase_seconds.values())
    assert set(result.phase_flops) == set(PHASES) and all(v > 0 for v in result.phase_flops.values())
    lora_b = [v for k, v in result.lora_state.items() if k.endswith("lora_B.weight")]
    assert lora_b and any(v.abs().max() > 0 for v in lora_b)  # B starts at zero: it trained

    # Same layers, same rank as the recipe's adapter for the same config.
    recipe = train_lora(config, data, tmp_path / "recipe")
    assert recipe.adapter_path is not None
    saved = load_file(recipe.adapter_path)
    prefix = "transformer." if family == "flux" else "unet."
    assert {k.removeprefix(prefix) for k in saved} == set(result.lora_state)
    assert all(saved[prefix + k].shape == v.shape for k, v in result.lora_state.items())
    assert all(v.shape[0] == 4 for k, v in result.lora_state.items() if k.endswith("lora_A.weight"))


def test_bench_runs_both_loops_in_fresh_processes_and_reports(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_path = tmp_path / "raw.json"
    args = ["--size", "tiny", "--model-dir", str(tiny_dir / "sd15"), "--steps", "3", "--warmup", "1"]
    code = main(
        [*args, "--repeats", "1", "--images", "2", "--batch-size", "2", "--threads", "1", "--json", str(raw_path)]
    )

    out = capsys.readouterr().out
    assert "goal: steps/s, recipe / reference (median of rounds)" in out and "(goal >= 1.50)" in out
    assert "goal: peak RSS, recipe / reference (median of rounds)" in out and "(goal <= 0.70)" in out
    assert code == (0 if "goals: 2 of 2 met" in out else 1)  # the bench fails when a goal is missed
    assert "LoRA training, tiny sd15, 64x64, batch 2, 2 images, 3 steps, 1 rounds, 1 torch threads" in out
    for row in ("steps/s ratio (recipe / reference)", "peak RSS ratio (recipe / reference)", "SD 1.5-sized"):
        assert row in out
    ((pair,),) = json.loads(raw_path.read_text(encoding="utf-8"))["runs"].values()
    recipe, reference = pair["recipe"], pair["reference"]
    for run in (recipe, reference):
        assert run["steps"] == 3 and run["device"] == "cpu"
        assert run["steps_per_s"] > 0 and run["end_to_end_s"] > run["first_step_done_s"] > 0
        assert run["peak_mib"] > run["baseline_mib"] > 0
        assert 0 < run["loss_mean"] < 10
    assert 0 < recipe["caching_s"] < recipe["first_step_done_s"]
    assert set(reference["phase_seconds"]) == set(reference["phase_flops"]) == set(PHASES)


def test_medium_model_gives_the_encoders_about_their_sd15_share_of_a_step() -> None:
    sd15 = sd15_sized_flop_shares(512, batch_size=1, rank=None)
    assert 0.3 < sd15["vae"] < 0.5 and sd15["text"] < 0.02  # real SD 1.5: the VAE is a real share, text not

    config = LoraTrainingConfig.from_params("sd15", "meta", lora_params(MEDIUM_RESOLUTION, 1, 1, rank=None))
    flops = meta_phase_flops(config, sd15_medium_pipeline(device="meta"), 1)
    total = sum(flops.values())
    assert abs(flops["vae"] / total - sd15["vae"]) < 0.15
    assert flops["text"] / total < 0.03


def test_the_default_sd15_size_gives_the_encoders_their_sd15_share_of_the_parameters() -> None:
    pipe = sd15_sized_pipeline(device="meta")
    params = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("unet", "vae", "text_encoder")
    }

    assert 0.18 < (params["vae"] + params["text_encoder"]) / sum(params.values()) < 0.21  # SD 1.5: 207M of 1.07B


def test_flux_sized_pipeline_has_flux1_dev_sizes() -> None:
    pipe = flux_sized_pipeline(device="meta")

    def billions(module: torch.nn.Module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e9

    assert billions(pipe.transformer) == pytest.approx(11.90, abs=0.02)
    assert billions(pipe.text_encoder_2) == pytest.approx(4.76, abs=0.02)
    assert billions(pipe.text_encoder) == pytest.approx(0.123, abs=0.002)
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.vae.config.latent_channels == 16
