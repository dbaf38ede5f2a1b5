"""bench/gpu_quick.py, the prepared GPU run (docs/gpu.md): its dry run on the CPU (a part of it: the whole takes
minutes) records every run with a status, a failing run keeps its traceback while the next goes on, bad arguments
are refused, and the reduced-depth FLUX it builds on the GPU has FLUX.1-dev's blocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.gpu_quick import RUNS

REPO = Path(__file__).resolve().parent.parent


def gpu_quick(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.gpu_quick",
            "--dry-run",
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((out / "gpu_quick.json").read_text()) if (out / "gpu_quick.json").exists() else {}
    return done, report


def test_dry_run_records_every_run_and_goes_on_past_a_failing_one(tmp_path: Path) -> None:
    work = tmp_path / "work"
    model = work / "flux-model"  # a broken pipeline folder where lora_flux expects the one it builds
    model.mkdir(parents=True)
    (model / "model_index.json").write_text("{not json", encoding="utf-8")
    for i in range(2):
        (work / f"flux-lora-{i}").mkdir()
        (work / f"flux-lora-{i}" / "lora.safetensors").write_bytes(b"")
    done, report = gpu_quick(tmp_path, "--only", "lora_flux", "text_sft")
    assert done.returncode == 1
    assert "failed: lora_flux" in done.stdout
    assert report["dry_run"] is True
    assert list(report["runs"]) == [run.name for run in RUNS]
    failed = report["runs"]["lora_flux"]
    assert failed["status"] == "error"
    assert "Traceback" in failed["traceback"]
    sft = report["runs"]["text_sft"]  # the run after the failing one
    assert sft["status"] == "ok", sft
    assert sft["metrics"]["lora"]["tokens_per_s"] > 0
    assert sft["cap_s"] > 0
    others = [result for name, result in report["runs"].items() if name not in ("lora_flux", "text_sft")]
    assert {result["status"] for result in others} == {"skipped"}
    assert (tmp_path / "out" / "gpu_quick.log").read_text().count("===== text_sft") == 1


def test_no_budget_skips_every_run(tmp_path: Path) -> None:
    done, report = gpu_quick(tmp_path, "--budget-s", "0")
    assert done.returncode == 0, done.stderr
    assert all(result["status"] == "skipped" and "budget" in result["reason"] for result in report["runs"].values())


@pytest.mark.parametrize(
    "args", [["--only", "flux_serve"], ["--only"], ["--budget-s", "-1"], ["--budget-s", "soon"], ["--child", "rm -rf"]]
)
def test_bad_arguments_are_refused(tmp_path: Path, args: list[str]) -> None:
    done, report = gpu_quick(tmp_path, *args)
    assert done.returncode == 2
    assert "error:" in done.stderr
    assert report == {}


def test_reduced_flux_has_flux_dev_blocks_fewer_of_them() -> None:
    """The GPU run's FLUX (built on the meta device here: no weights): FLUX.1-dev's block and T5 layer sizes."""
    from genfoundry.models.sized import FLUX_REDUCED_DEPTH, flux_sized_pipeline

    full = flux_sized_pipeline(device="meta")
    reduced = flux_sized_pipeline(device="meta", **FLUX_REDUCED_DEPTH)

    def count(module: Any) -> int:
        return sum(p.numel() for p in module.parameters())

    assert len(reduced.transformer.transformer_blocks) == FLUX_REDUCED_DEPTH["double_blocks"]
    assert len(reduced.transformer.single_transformer_blocks) == FLUX_REDUCED_DEPTH["single_blocks"]
    assert len(reduced.text_encoder_2.encoder.block) == FLUX_REDUCED_DEPTH["t5_layers"]
    assert count(reduced.transformer.transformer_blocks[0]) == count(full.transformer.transformer_blocks[0])
    assert count(reduced.transformer.single_transformer_blocks[0]) == count(
        full.transformer.single_transformer_blocks[0]
    )
    assert count(reduced.text_encoder_2.encoder.block[0]) == count(full.text_encoder_2.encoder.block[0])
    assert count(reduced.vae) == count(full.vae)
