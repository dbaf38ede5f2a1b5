"""The benches' goal helper: a goal prints its measure, the goal and PASS / FAIL, and any failed goal makes the
bench's exit code 1 (after everything is printed)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bench.common import goal, goals_exit_code, report


def test_a_met_goal_prints_pass_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    goals = [goal("router p50, one prompt via HTTP", 4.2, "<=", 5.0, unit=" ms", fmt=".1f"), goal("x", 1.6, ">=", 1.5)]
    report("bench", [("measured", "42"), *goals])

    assert goals_exit_code(goals) == 0
    out = capsys.readouterr().out
    assert "goal: router p50, one prompt via HTTP  4.2 ms  (goal <= 5.0 ms)  PASS" in out
    assert "goal: x" in out and "1.60  (goal >= 1.50)  PASS" in out
    assert "goals: 2 of 2 met" in out


def test_a_missed_goal_prints_fail_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    goals = [goal("api / in-process", 1.18, "<=", 1.10), goal("steps/s ratio", 1.3, ">=", 1.5), goal("ok", 1, "<=", 1)]
    report("bench", goals)

    assert goals_exit_code(goals) == 1
    out = capsys.readouterr().out
    assert "1.18  (goal <= 1.10)  FAIL" in out and "1.30  (goal >= 1.50)  FAIL" in out
    assert "1.00  (goal <= 1.00)  PASS" in out  # the bound itself meets the goal
    assert "goals: 1 of 3 met; FAILED: api / in-process; steps/s ratio" in out


def test_a_bench_process_exits_1_when_a_goal_failed() -> None:
    code = (
        "import sys\nfrom bench.common import goal, goals_exit_code\nsys.exit(goals_exit_code([goal('g', 2, '<=', 1)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert done.returncode == 1
    assert "FAILED: g" in done.stdout


def test_an_unknown_comparison_is_refused() -> None:
    with pytest.raises(ValueError, match="op must be"):
        goal("g", 1, "<", 2)  # type: ignore[arg-type]
