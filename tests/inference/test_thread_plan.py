"""Torch threads per engine and job process: the plan (a pure function of the cores and who runs at once) and the
count an engine's worker thread really runs with."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from genfoundry.config import JobSettings, Settings
from genfoundry.inference.image import ImageEngine, ImageJob
from genfoundry.inference.loader import BaseModelSpec
from genfoundry.inference.thread_plan import ThreadPlan, available_cores, plan_threads, server_thread_plan

PLANS = [
    # cores, job processes, override -> image, text, router, each job process
    (2, 1, None, (1, 1, 1, 1)),  # more users than cores: one each, the least torch runs with
    (1, 0, None, (1, 1, 1, 1)),
    (4, 1, None, (1, 1, 1, 1)),
    (8, 1, None, (2, 2, 2, 2)),
    (16, 1, None, (4, 4, 4, 4)),
    (10, 1, None, (4, 2, 2, 2)),  # the remainder goes to the image engine
    (16, 0, None, (6, 5, 5, 5)),
    (60, 5, None, (11, 7, 7, 7)),
    (2, 1, 3, (3, 3, 3, 3)),  # the setting overrides the plan
]


@pytest.mark.parametrize(("cores", "jobs", "override", "expected"), PLANS)
def test_plan_gives_each_torch_user_its_share(
    cores: int, jobs: int, override: int | None, expected: tuple[int, int, int, int]
) -> None:
    plan = plan_threads(cores=cores, job_processes=jobs, override=override)
    assert (plan.image, plan.text, plan.router, plan.job) == expected
    assert plan.overridden == (override is not None)
    total = plan.image + plan.text + plan.router + jobs * plan.job
    if override is None and cores >= 3 + jobs:  # enough cores for one thread each: never more than the cores
        assert total <= cores


@pytest.mark.parametrize(("cores", "jobs", "override"), [(0, 1, None), (4, -1, None), (4, 1, 0)])
def test_plan_refuses_impossible_inputs(cores: int, jobs: int, override: int | None) -> None:
    with pytest.raises(ValueError):
        plan_threads(cores=cores, job_processes=jobs, override=override)


def test_server_plan_counts_a_job_process_per_device_slot_and_honours_the_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cores = available_cores()
    assert server_thread_plan(Settings(jobs=JobSettings(device_slots=2))) == plan_threads(cores=cores, job_processes=2)
    with caplog.at_level(logging.INFO, logger="genfoundry"):
        plan = server_thread_plan(Settings(torch_threads=3))
    assert plan == ThreadPlan(3, 3, 3, 3, cores=cores, overridden=True)
    assert caplog.messages == [f"torch threads: {plan.summary()}"]
    assert "each job process 3 (GENFOUNDRY_TORCH_THREADS)" in plan.summary()


def test_image_engine_worker_runs_with_the_planned_threads(tiny_dir: Path) -> None:
    wanted = 1 if torch.get_num_threads() != 1 else 2  # unlike a new thread's default, so the setting shows
    engine = ImageEngine(
        device="cpu",
        dtype="float32",
        memory_budget_bytes=4 * 1024**3,
        max_queue=4,
        max_batch_size=1,
        batch_timeout_s=0,
        threads=wanted,
    )
    spec = BaseModelSpec(id="tiny-sd15", family="sd15", source=str(tiny_dir / "sd15"))
    try:
        job = ImageJob(spec, "a cat", None, width=64, height=64, steps=1, guidance_scale=1.0, seeds=(0,))
        assert len(engine.generate_sync(job)) == 1
        assert engine.stats()["models"]["tiny-sd15"]["torch_threads"] == wanted
    finally:
        engine.close()
