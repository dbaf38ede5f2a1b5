"""The screen and the real PlantUML agree on which lines are directives, invisible characters included."""

from __future__ import annotations

import re

import pytest

from genfoundry.diagrams.renderer import LocalRenderer
from genfoundry.errors import Invalid
from tests.diagrams.test_security import invisible_characters, screen

_LINE_HEADER = "x-plantuml-diagram-error-line"


def plantuml_directive_prefixes(plantuml: LocalRenderer, prefixes: list[str]) -> set[str]:
    """The prefixes before which PlantUML reads `!$vN = 1` as a directive (or fails on the line), unscreened.

    Each prefix gets one line of a note: PlantUML draws the lines it reads as text, and drops the directives. A line
    PlantUML fails on is counted as a directive (the screen must not let it through as text either)."""
    remaining = list(enumerate(prefixes))
    failed: set[str] = set()
    while True:
        lines = [f"{prefix}!$v{index:05d} = 1" for index, prefix in remaining]
        source = "@startuml\nnote as N\nshown\n" + "\n".join(lines) + "\nend note\n@enduml"
        response = plantuml._fetch(source, "svg")  # past the screen on purpose: PlantUML's own reading
        if _LINE_HEADER not in response.headers:
            break
        failed.add(remaining.pop(int(response.headers[_LINE_HEADER]) - 4)[1])
    drawn = {int(number) for number in re.findall(r"\$v(\d{5})", response.content.decode("utf-8", "replace"))}
    assert b">shown<" in response.content
    return failed | {prefix for index, prefix in remaining if index not in drawn}


def test_every_line_plantuml_reads_as_a_directive_the_screen_reads_as_one(plantuml: LocalRenderer) -> None:
    hidden = [char for char in invisible_characters() if not "\ue000" <= char <= "\uf8ff"]  # PlantUML's own marks
    prefixes = ["", " ", "\t", "\ufeff", "\ufeff ", "\ufeff\t"]
    for char in hidden:
        prefixes += [char, f" {char}", f"\t{char}", f"\ufeff{char}"]
    directives = plantuml_directive_prefixes(plantuml, prefixes)
    # The probe sees PlantUML's own rule (a byte-order mark, then spaces and tabs), so it cannot pass vacuously.
    assert {"", " ", "\t", "\ufeff", "\ufeff ", "\ufeff\t"} <= directives
    missed = []
    for prefix in directives:
        try:
            screen(f"@startuml\n{prefix}!frobnicate\n@enduml")
        except Invalid as error:
            if error.details != {"line": 2, "directive": "!frobnicate"}:
                missed.append((prefix, error.details))
        else:
            missed.append((prefix, "passed"))
    assert missed == []


@pytest.mark.parametrize("prefix", ["\ufeff", "\ufeff  ", "\t"])
def test_a_directive_the_screen_lets_through_is_one_to_plantuml(plantuml: LocalRenderer, prefix: str) -> None:
    svg = plantuml.render(f'@startuml\n{prefix}!$label = "from a variable"\nAlice -> Bob : $label\n@enduml', "svg")
    assert b">from a variable<" in svg


@pytest.mark.parametrize(
    "line", ["\ufeff!include /etc/passwd", "\u200b!include <C4/C4_Context>", "\u00a0!dump_memory", "\u2060!option x"]
)
def test_hidden_refused_directives_never_reach_plantuml(plantuml: LocalRenderer, line: str) -> None:
    starts = plantuml.process.starts
    with pytest.raises(Invalid) as caught:
        plantuml.render(f"@startuml\nA -> B\n{line}\n@enduml", "svg")
    assert caught.value.code == "plantuml_not_allowed" and caught.value.details["line"] == 3
    assert plantuml.process.starts == starts
