"""The shipped scenario -> PlantUML pairs: shape, coverage, a clean held-out split, and PlantUML's own verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import pytest

from genfoundry.diagrams.renderer import LocalRenderer

DATA = files("genfoundry") / "data" / "diagrams"
ROOT = Path(__file__).resolve().parents[2]
# How each diagram type shows in its completion: the start tag, or a keyword line only that type has here.
MARKERS = {
    "sequence": "\nparticipant ",
    "class": "\nclass ",
    "usecase": "\n  usecase ",
    "activity": "\nstart\n",
    "state": "\n[*] --> ",
    "component": "\ncomponent ",
    "deployment": "\nnode ",
    "object": "\nobject ",
    "er": "\nentity ",
    "gantt": "@startgantt\n",
    "mindmap": "@startmindmap\n",
    "wbs": "@startwbs\n",
    "timing": "\n@0\n",
}


def load(name: str) -> list[dict[str, str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


TRAIN = load("plantuml_pairs.jsonl")
HELDOUT = load("plantuml_pairs_heldout.jsonl")


@pytest.mark.parametrize(("rows", "least"), [(TRAIN, 300), (HELDOUT, 35)])
def test_pairs_have_prompt_and_plantuml_completion(rows: list[dict[str, str]], least: int) -> None:
    assert len(rows) >= least
    for row in rows:
        assert set(row) == {"prompt", "completion"}
        assert len(row["prompt"]) > 40
        first, last = row["completion"].split("\n")[0], row["completion"].split("\n")[-1]
        assert first.startswith("@start") and last == "@end" + first[len("@start") :]
    assert len({row["prompt"] for row in rows}) == len(rows)
    assert len({row["completion"] for row in rows}) == len(rows)


@pytest.mark.parametrize("rows", [TRAIN, HELDOUT])
def test_every_common_diagram_type_is_covered(rows: list[dict[str, str]]) -> None:
    for kind, marker in MARKERS.items():
        count = sum(marker in row["completion"] for row in rows)
        assert count >= (15 if rows is TRAIN else 3), f"{kind}: {count}"


def test_heldout_shares_no_scenario_with_training() -> None:
    assert not {row["prompt"] for row in TRAIN} & {row["prompt"] for row in HELDOUT}
    assert not {row["completion"] for row in TRAIN} & {row["completion"] for row in HELDOUT}


def test_shipped_files_match_the_written_scenarios() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_plantuml_pairs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_completion_passes_plantumls_check(plantuml: LocalRenderer) -> None:
    """All 360 completions through the long-lived PlantUML process, two at a time (its render slots)."""
    rows = TRAIN + HELDOUT
    with ThreadPoolExecutor(max_workers=plantuml.settings.max_concurrent_renders) as pool:
        reports = list(pool.map(lambda row: plantuml.check(row["completion"]), rows))
    invalid = [
        (row["completion"], report.errors) for row, report in zip(rows, reports, strict=True) if not report.valid
    ]
    assert invalid == []
    kinds = {report.diagram_type for report in reports}
    assert {"sequence", "class", "description", "activity", "state", "gantt", "mindmap", "wbs", "timing"} <= kinds
