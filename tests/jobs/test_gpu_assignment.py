"""Device jobs that run at once see different GPUs (`CUDA_VISIBLE_DEVICES` per job process), read back inside the
jobs; the GPUs are named by the server's own `CUDA_VISIBLE_DEVICES`, so no GPU is needed to check the choice."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from genfoundry.jobs.gpu_assignment import GpuAssigner, visible_gpus
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo import users as users_repo
from tests.jobs.sample_jobs import Harness, job_settings, make_runner

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def importable_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job processes import the sample kinds by dotted path, whatever folder pytest runs from."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))


def run_jobs(harness: Harness, kinds: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
    with harness.runner.sessions() as session:
        owner = users_repo.get_or_create_local_user(session=session).id
        jobs = [harness.runner.submit(session=session, owner_id=owner, kind=k, params=params) for k in kinds]
        session.commit()
    for job in jobs:
        harness.runner.start(job)
    results = []
    deadline = time.monotonic() + 120
    for job in jobs:
        while True:  # the job's row is the only way to see a job process finish
            with harness.runner.sessions() as session:
                found = jobs_repo.get_job(session=session, job_id=job.id)
            assert found is not None
            if found.status in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, f"job still {found.status}"
            time.sleep(0.05)
        assert (found.status, found.error) == ("succeeded", None)
        results.append(found.result)
    return results


def test_device_jobs_running_together_get_different_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    harness = make_runner(job_settings(tmp_path / "home").model_copy(update={"device": "cuda"}))
    try:
        together = run_jobs(harness, ["visible_gpus", "visible_gpus"], {"hold_s": 1.5})
        assert sorted(r["cuda_visible_devices"] for r in together) == ["3", "5"]
        # The next device job gets one GPU again (which one depends on whether the earlier processes have exited
        # yet: their rows are final a moment before); a job that uses no device keeps the server's list.
        device_job, no_device_job = run_jobs(harness, ["visible_gpus", "visible_gpus_no_device"], {})
        assert device_job["cuda_visible_devices"] in ("3", "5")
        assert no_device_job["cuda_visible_devices"] == "3,5"
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
