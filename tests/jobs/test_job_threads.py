"""A job process runs torch with the share of the cores the server planned for it (OMP_NUM_THREADS in its
environment), read back inside the job."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from genfoundry.inference.thread_plan import available_cores
from tests.jobs.sample_jobs import job_settings, make_runner, run_jobs

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def importable_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job process imports the sample kinds by dotted path, whatever folder pytest runs from."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


# torch caps OMP_NUM_THREADS at the cores; a plan never gives more.
@pytest.mark.parametrize("threads", sorted({1, available_cores()}))
def test_job_process_runs_with_the_planned_torch_threads(tmp_path: Path, threads: int) -> None:
    harness = make_runner(job_settings(tmp_path / "home").model_copy(update={"torch_threads": threads}))
    try:
        [job] = run_jobs(harness, ["torch_threads"], {})
        assert job.result == {"torch_threads": threads}
    finally:
        harness.close()
