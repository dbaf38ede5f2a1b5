"""Device jobs that run at once see different GPUs (`CUDA_VISIBLE_DEVICES` per job process), read back inside the
jobs; the GPUs are named by the server's own `CUDA_VISIBLE_DEVICES`, so no GPU is needed to check the choice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from genfoundry.jobs.gpu_assignment import GpuAssigner, visible_gpus
from tests.jobs.sample_jobs import job_settings, make_runner, run_jobs

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def importable_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job processes import the sample kinds by dotted path, whatever folder pytest runs from."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))


def test_device_jobs_running_together_get_different_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    harness = make_runner(job_settings(tmp_path / "home").model_copy(update={"device": "cuda"}))
    try:
        together = run_jobs(harness, ["visible_gpus", "visible_gpus"], {"hold_s": 1.5})
        assert sorted(job.result["cuda_visible_devices"] for job in together) == ["3", "5"]
        # The next device job gets one GPU again (which one depends on whether the earlier processes have exited
        # yet: their rows are final a moment before); a job that uses no device keeps the server's list.
        device_job, no_device_job = run_jobs(harness, ["visible_gpus", "visible_gpus_no_device"], {})
        assert device_job.result["cuda_visible_devices"] in ("3", "5")
        assert no_device_job.result["cuda_visible_devices"] == "3,5"
    finally:
        harness.close()


def test_one_gpu_a_pinned_device_or_the_cpu_leave_the_environment_alone(tmp_path: Path) -> None:
    assert visible_gpus("cuda", {"CUDA_VISIBLE_DEVICES": "0"}) == ["0"]
    assert visible_gpus("cuda:1", {"CUDA_VISIBLE_DEVICES": "0,1"}) == []
    assert visible_gpus("cpu", {"CUDA_VISIBLE_DEVICES": "0,1"}) == []
    assert visible_gpus("cuda", {"CUDA_VISIBLE_DEVICES": " 2, 7 ,"}) == ["2", "7"]
    assert not GpuAssigner(["0"]).spreads and GpuAssigner(["0", "1"]).spreads


def test_more_slots_than_gpus_share_the_least_busy() -> None:
    alive = {"a": True, "b": True, "c": True}
    gpus = GpuAssigner(["0", "1"])
    for job in ("a", "b", "c"):
        gpus.hold(job, gpus.least_busy(), lambda job=job: alive[job])
    assert gpus.least_busy() == "1"  # "0" holds a and c, "1" holds b
    alive["a"] = alive["c"] = False
    assert gpus.least_busy() == "0"
