"""Cutting PlantUML out of a model's reply, and the generate -> check -> retry loop against PlantUML itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from genfoundry.config import DiagramSettings
from genfoundry.diagrams.renderer import LocalRenderer
from genfoundry.text.plantuml import RETRY_TEMPERATURE, extract_plantuml, generate_until_valid

VALID = "@startuml\nAlice -> Bob : hello\n@enduml"
BROKEN = "@startuml\nclass A {\n@enduml"


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRenderer]:
    renderer = LocalRenderer(DiagramSettings(), work_dir=Path(tmp_path_factory.mktemp("plantuml")))
    yield renderer
    renderer.close()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (VALID, VALID),
        (f"Here it is:\n{VALID}\nand some chatter @enduml", VALID),
        ("@startmindmap\n* root\n** leaf\n@endmindmap\n@startuml", "@startmindmap\n* root\n** leaf\n@endmindmap"),
        ("@startuml\nA -> B\n", "@startuml\nA -> B"),  # never closed: to the end
        ("no diagram at all  ", "no diagram at all"),
        (
            "@startgantt\n[Task] lasts 2 days\n@enduml\n@endgantt",
            "@startgantt\n[Task] lasts 2 days\n@enduml\n@endgantt",
        ),
    ],
)
def test_extract_plantuml(reply: str, expected: str) -> None:
    assert extract_plantuml(reply) == expected


def test_retries_until_plantuml_accepts(renderer: LocalRenderer) -> None:
    replies = iter([f"Sure:\n{BROKEN}", "   ", VALID, VALID])
    calls: list[tuple[int, float]] = []

    def generate(seed: int, temperature: float) -> str:
        calls.append((seed, temperature))
        return next(replies)

    attempts = generate_until_valid(generate, renderer.check, tries=4, seed=7)
    assert calls == [(7, 0.0), (8, RETRY_TEMPERATURE), (9, RETRY_TEMPERATURE)]  # greedy first, then new seeds
    assert [a.valid for a in attempts] == [False, False, True]
    assert attempts[0].errors[0].line == 2 and attempts[0].plantuml == BROKEN
    assert attempts[1].errors == ["the reply holds no PlantUML"]
    assert attempts[2].plantuml == VALID


def test_gives_up_after_the_tries_and_refusals_count_as_invalid(renderer: LocalRenderer) -> None:
    attempts = generate_until_valid(lambda seed, t: "@startuml\n!include /etc/passwd\n@enduml", renderer.check, tries=2)
    assert len(attempts) == 2 and not any(a.valid for a in attempts)
    assert "include" in str(attempts[0].errors[0])
    with pytest.raises(ValueError):
        generate_until_valid(lambda seed, t: VALID, renderer.check, tries=0)
