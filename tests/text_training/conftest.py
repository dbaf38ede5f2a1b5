"""tiny-llm built once for the text-training tests (a few seconds), apart from the full tiny set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from genfoundry.models.tiny_llm import build_tiny_llm

    return Path(build_tiny_llm(tmp_path_factory.mktemp("tiny-llm") / "tiny-llm"))


ACTORS = ("User", "Server", "Database", "Cache", "Client", "Auth", "Queue", "Worker", "Browser", "Api")


def plantuml_pair(index: int) -> tuple[str, str]:
    """A small scenario and its sequence diagram; `index` picks the participants and the message."""
    a, b = ACTORS[index % len(ACTORS)], ACTORS[(index * 3 + 1) % len(ACTORS)]
    verb = ("request", "query", "login", "fetch")[index % 4]
    return (
        f"{a} sends a {verb} to {b}, which answers",
        f"@startuml\n{a} -> {b}: {verb}\n{b} --> {a}: ok\n@enduml",
    )


def write_pairs(path: Path, count: int, *, chat: bool = False, start: int = 0) -> Path:
    """`count` scenario -> PlantUML examples as JSONL: prompt/completion lines, or chat lines with a system turn."""
    import json

    lines = []
    for index in range(start, start + count):
        prompt, completion = plantuml_pair(index)
        if chat:
            record: dict[str, object] = {
                "messages": [
                    {"role": "system", "content": "Answer with PlantUML."},
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": completion},
                ]
            }
        else:
            record = {"prompt": prompt, "completion": completion}
        lines.append(json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs") / "train.jsonl", 24)


@pytest.fixture(scope="session")
def make_pairs() -> Callable[..., Path]:
    """write_pairs, for tests that need their own file (chat lines, another count)."""
    return write_pairs
