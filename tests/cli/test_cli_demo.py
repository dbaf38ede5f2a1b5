"""`genfoundry demo diagrams` as users run it: a subprocess with GENFOUNDRY_HOME set, tiny models present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genfoundry.config import Settings
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.services.local import open_database
from tests.conftest import make_home


def run_demo(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GENFOUNDRY_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "genfoundry"), "demo", "diagrams", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow  # two CLI processes, a job process and PlantUML's JVM: a few minutes on a loaded 2-core CPU
def test_demo_trains_then_generates_checks_and_retries(tiny_dir: Path, tmp_path: Path) -> None:
    home = make_home(tmp_path, tiny_dir)
    # Two steps are too few to count on a valid diagram: the demo either draws one or says that no try was valid.
    first = run_demo(home, "--steps", "2", "--tries", "2", "--scenario", "Draw a sequence diagram: a user logs in.")
    output = first.stdout + first.stderr
    assert "fine-tuning mini-llm on 320 scenario -> PlantUML pairs" in output
    assert "try 1 (seed 0, temperature 0.0)" in output and "a user logs in" in first.stdout
    with open_database(Settings(home=home)) as session:
        jobs = jobs_repo.list_jobs(session=session, owner_id="user_local", kinds=None, limit=10)[0]
        adapters = adapters_repo.list_adapters(session=session, owner_id="user_local")
    assert [(j.kind, j.status) for j in jobs] == [("fine_tune_sft", "succeeded")]
    demo = [a for a in adapters if a.name == "ft-mini-llm-demo-diagrams"]
    assert len(demo) == 1 and demo[0].family == "text"
    if first.returncode == 0:  # a lucky valid diagram: its file is printed last
        assert Path(first.stdout.strip().splitlines()[-1]).read_bytes().startswith(b"\x89PNG")
    else:
        assert first.returncode == 1 and "no valid PlantUML in 2 tries" in first.stderr
        assert "train longer (--steps) or allow more --tries" in first.stderr

    # A second run reuses the adapter and takes the caller's scenario.
    again = run_demo(home, "--scenario", "Draw a sequence diagram: Alice greets Bob.", "--tries", "1")
    assert f"using adapter {demo[0].id} from an earlier run" in again.stderr
    assert "Alice greets Bob" in again.stdout
    assert "fine-tuning" not in again.stderr


def test_demo_refuses_a_bad_format(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--format", "gif")
    assert result.returncode == 1 and "--format must be png or svg" in result.stderr


@pytest.mark.slow
def test_demo_with_its_defaults_renders_a_diagram(tiny_dir: Path, tmp_path: Path) -> None:
    """The README's command: the demo's epochs on the CPU (minutes), then a held-out scenario drawn."""
    out = tmp_path / "diagram.png"
    result = run_demo(make_home(tmp_path, tiny_dir), "--out", str(out), timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes().startswith(b"\x89PNG") and result.stdout.strip().endswith(str(out))


def test_demo_images_trains_a_lora_and_writes_the_before_after_grid(tiny_dir: Path, tmp_path: Path) -> None:
    """Two LoRA steps are enough to prove the loop: a dataset, a job, both sides drawn and the grid written."""
    from PIL import Image

    from genfoundry.cli_demo_images import CELL, GRID_PROMPTS, GRID_SEEDS

    home = make_home(tmp_path, tiny_dir)
    env = {**os.environ, "GENFOUNDRY_HOME": str(home), "COLUMNS": "200"}
    out = tmp_path / "grid.png"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "genfoundry"), "demo", "images", "--steps", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "teaching mini-sd15 'a zzq' from 8 images" in result.stderr
    grid = Image.open(out)
    assert grid.width == 2 * len(GRID_SEEDS) * CELL + 16 and grid.height > len(GRID_PROMPTS) * CELL
    with open_database(Settings(home=home)) as session:
        jobs = jobs_repo.list_jobs(session=session, owner_id="user_local", kinds=None, limit=10)[0]
        adapters = adapters_repo.list_adapters(session=session, owner_id="user_local")
    assert [(j.kind, j.status) for j in jobs] == [("fine_tune_lora", "succeeded")]
    assert [a.base_id for a in adapters] == ["mini-sd15"]
