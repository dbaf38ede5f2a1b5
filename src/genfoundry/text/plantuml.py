"""PlantUML from a text model's reply: cut out the diagram, and generate until PlantUML's check passes.

The generator and the checker are passed in (a chat call, `PlantUmlRenderer.check`), so the demo, the bench
and the API share one loop: the first try greedy, each retry sampled with a new seed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from genfoundry.errors import GenfoundryError

_START = re.compile(r"^\s*@start([a-z]+)\b.*$", re.MULTILINE)
RETRY_TEMPERATURE = 0.8


def extract_plantuml(reply: str) -> str:
    """The first `@start<type>` … `@end<type>` block of `reply` (to the end when it is not closed); the whole
    reply, stripped, when it holds no `@start` line."""
    start = _START.search(reply)
    if start is None:
        return reply.strip()
    end = re.compile(rf"^\s*@end{start.group(1)}\b.*$", re.MULTILINE).search(reply, start.end())
    return reply[start.start() : end.end() if end else len(reply)].strip()


@dataclass(frozen=True)
class DiagramAttempt:
    """One generation: its seed and temperature, the PlantUML cut from the reply, and PlantUML's verdict."""

    seed: int
    temperature: float
    plantuml: str
    valid: bool
    errors: Sequence[Any] = field(default_factory=list)
    diagram_type: str | None = None  # PlantUML's name for a valid diagram's type (sequence, class...)


def generate_until_valid(
    generate: Callable[[int, float], str],
    check: Callable[[str], Any],
    *,
    tries: int,
    seed: int = 0,
    temperature: float = RETRY_TEMPERATURE,
) -> list[DiagramAttempt]:
    """Up to `tries` generations, stopping at the first whose PlantUML `check` finds valid.

    `generate(seed, temperature)` returns the model's reply; the first try is greedy (temperature 0), each
    retry samples at `temperature` with seed `seed + i`. `check(plantuml)` returns an object with `valid` and
    `errors` (a `SyntaxReport`); a check that refuses the source (GenfoundryError) counts as invalid.
    """
    if tries < 1:
        raise ValueError("tries must be at least 1")
    attempts: list[DiagramAttempt] = []
    for index in range(tries):
        this_temperature = 0.0 if index == 0 else temperature
        plantuml = extract_plantuml(generate(seed + index, this_temperature))
        valid, errors, kind = False, ["the reply holds no PlantUML"], None
        if plantuml:
            try:
                report = check(plantuml)
            except GenfoundryError as exc:  # refused by the screening (an !include), too large, too slow
                errors = [exc.message]
            else:
                valid, errors, kind = bool(report.valid), list(report.errors), report.diagram_type
        attempts.append(DiagramAttempt(seed + index, this_temperature, plantuml, valid, errors, kind))
        if valid:
            break
    return attempts
