"""Known-harmless library output stays out of a job's log and the CLI's output; real warnings still show.

The same model work (load a tiny pipeline, save a transformers model, wrap one with PEFT, import bitsandbytes) runs
once in a plain Python process, where the noise must appear (else this test would prove nothing), and once as a job
in its own worker process, whose log file must be free of it. Real warnings ride along in both: an unknown
TRANSFORMERS_VERBOSITY (transformers' own warning), another message on a filtered logger, and one of ours.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from genfoundry.jobs.context import JobContext
from genfoundry.library_noise import VERBOSE_ENV
from tests.conftest import make_home
from tests.helpers import run_cli
from tests.jobs.sample_jobs import job_settings, make_runner, run_jobs

NOISE = {
    "torchvision fallback": "requires torchvision (not installed); falling back to",
    "bitsandbytes kernels": "Failed to load CPU gemm_4bit_forward from kernels-community",
    "PEFT reading a deprecated property": "`is_gradient_checkpointing` is deprecated",
    "diffusers progress bar": "Loading pipeline components...",
    "transformers loading bar": "Loading weights",
    "transformers saving bar": "Writing model shards",
    "any progress bar": "it/s]",
}
REAL = {
    "transformers' own warning": "Unknown option TRANSFORMERS_VERBOSITY=loud",
    "another message on a filtered logger": "a real transformers warning",
    "a warning of ours": "a real warning from the job",
}
REAL_ENV = {"TRANSFORMERS_VERBOSITY": "loud"}  # transformers warns about the value when it is imported


def make_noise(pipeline_dir: str, out_dir: str) -> None:
    """Model work that prints every known noise line, plus the real warnings."""
    import bitsandbytes  # noqa: F401  (its CPU backend warns on import when `kernels` is missing)
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, get_peft_model

    pipe = StableDiffusionPipeline.from_pretrained(pipeline_dir, safety_checker=None, requires_safety_checker=False)
    pipe.text_encoder.save_pretrained(Path(out_dir) / "text_encoder")
    get_peft_model(pipe.text_encoder, LoraConfig(r=2, target_modules=["q_proj"]))
    logging.getLogger("transformers.utils.import_utils").warning("a real transformers warning")
    warnings.warn("a real warning from the job", UserWarning, stacklevel=1)


def noisy_job(ctx: JobContext) -> dict[str, Any]:
    make_noise(ctx.params["pipeline"], ctx.params["out"])
    return {}


def found(output: str, lines: dict[str, str]) -> set[str]:
    return {name for name, text in lines.items() if text in output}


def test_a_jobs_log_has_no_known_noise_but_real_warnings_show(
    tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"pipeline": str(tiny_dir / "sd15"), "out": str(tmp_path)}
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from tests.test_library_noise import make_noise; make_noise(*{list(params.values())})",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **REAL_ENV},
    )
    assert plain.returncode == 0, plain.stderr
    control = plain.stdout + plain.stderr
    assert found(control, NOISE) >= set(NOISE) - {"bitsandbytes kernels"}, control  # that one depends on the CPU
    assert found(control, REAL) == set(REAL), control

    for name, value in REAL_ENV.items():
        monkeypatch.setenv(name, value)  # the job's process inherits the runner's environment
    log = noisy_job_log(tmp_path, params)
    assert found(log, NOISE) == set(), log
    assert found(log, REAL) == set(REAL), log


def test_under_serve_v_a_jobs_log_keeps_the_library_output(
    tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "1")  # what `genfoundry -v serve` sets for the job processes it starts
    log = noisy_job_log(tmp_path, {"pipeline": str(tiny_dir / "sd15"), "out": str(tmp_path)})
    assert found(log, {"diffusers progress bar": NOISE["diffusers progress bar"]}), log
    assert found(log, {"a warning of ours": REAL["a warning of ours"]}), log


def noisy_job_log(tmp_path: Path, params: dict[str, str]) -> str:
    """Runs `noisy_job` in its own worker process, as the server would; its log."""
    harness = make_runner(job_settings(tmp_path / "home"))
    try:
        harness.runner.register("noisy", f"{__name__}:noisy_job")
        [job] = run_jobs(harness, ["noisy"], params, timeout=300)
    finally:
        harness.close()
    return (tmp_path / "home" / "logs" / "jobs" / f"{job.id}.log").read_text()


def test_cli_generate_prints_no_known_noise_but_real_warnings_show(tmp_path: Path, tiny_dir: Path) -> None:
    home = make_home(tmp_path, tiny_dir)
    out = tmp_path / "cat.png"
    args = ("generate", "a cat", "--model", "tiny-sd15", "--size", "64x64", "--steps", "1", "-o", str(out))
    result = run_cli(home, *args, env=REAL_ENV)
    output = result.stdout + result.stderr
    assert out.exists()
    assert found(output, NOISE) == set(), output
    assert found(output, {"transformers' own warning": REAL["transformers' own warning"]}), output


def test_the_onnx_exports_axis_name_warning_is_filtered_and_others_of_its_module_show() -> None:
    code = (
        "import warnings; from genfoundry.library_noise import quiet_library_noise; quiet_library_noise()\n"
        "module = 'torch.onnx._internal.exporter._onnx_program'\n"
        "for message in ('# The axis name: batch will not be used, since it shares the same shape constraints with "
        "another axis: batch.', 'a real export warning'):\n"
        "    warnings.warn_explicit(message, UserWarning, '_onnx_program.py', 486, module=module)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "The axis name" not in result.stderr and "a real export warning" in result.stderr
