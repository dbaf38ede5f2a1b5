"""The README's Python example runs against a real server, so the quickstart cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Keys, LiveServer

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_readme_python_examples_run(live: LiveServer, keys: Keys) -> None:
    """The blocks run in order in one namespace, as a reader pastes them (later ones reuse `client`)."""
    blocks = python_blocks()
    assert blocks, "README has no python example"
    namespace: dict[str, object] = {}
    for block in blocks:
        code = block.replace("http://127.0.0.1:8000", live.url).replace('"gf-..."', repr(keys.alice))
        exec(compile(code, str(README), "exec"), namespace)
    assert namespace["png"][:8] == b"\x89PNG\r\n\x1a\n"  # type: ignore[index]
    assert namespace["reply"].model_dump()["route"]["route"] == "image"  # type: ignore[attr-defined]


def test_readme_names_the_commands_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", text, flags=re.MULTILINE):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
