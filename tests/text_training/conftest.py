"""tiny-llm built once for the text-training tests (a few seconds), apart from the full tiny set."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from genfoundry.models.tiny_llm import build_tiny_llm

    return Path(build_tiny_llm(tmp_path_factory.mktemp("tiny-llm") / "tiny-llm"))
